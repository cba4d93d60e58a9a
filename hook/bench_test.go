package hook

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// BenchmarkCapture pushes b.N 64-byte packets through a capture program
// (BPF_PROG_TEST_RUN, in batches) while a Source drains the ring into a
// pcapng writer on io.Discard, as in a capture. It reports the program's
// own cost per packet as the kernel measures it ("kernel-ns/pkt", which
// excludes time the test-run thread spends descheduled: on a loaded
// machine ns/op is mostly that) and the share of records lost.
func BenchmarkCapture(b *testing.B) {
	for _, perf := range []bool{false, true} {
		b.Run(map[bool]string{false: "ringbuf", true: "perf"}[perf], func(b *testing.B) {
			testutils.RequireRoot(b)
			spec, err := loadCapturetest()
			if err != nil {
				b.Fatal(err)
			}
			ring, err := NewRing(spec, RingOptions{Perf: perf})
			if err != nil {
				b.Fatal(err)
			}
			prog, err := Load(spec, ring, Options{Program: "capture_direct"})
			if err != nil {
				ring.Close()
				b.Fatal(err)
			}
			src, err := NewSource(ring, []Hook{{Program: prog, Interface: pcapng.Interface{Name: "bench"}}}, SourceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			w, _ := pcapng.NewWriter(io.Discard, pcapng.WriterOptions{})
			w.AddInterface(src.Interfaces()[0])
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, w) }()
			pkt := frame(17, 53, 64)
			var kernel time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for left := b.N; left > 0; {
				n := min(left, 4096)
				_, per, err := prog.Program.Benchmark(pkt, n, nil)
				if err != nil {
					b.Fatal(err)
				}
				kernel += per * time.Duration(n)
				left -= n
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			st := src.Stats()[0]
			if st.Seen > 0 {
				b.ReportMetric(float64(st.Lost)/float64(st.Seen), "lost/op")
				b.ReportMetric(float64(st.Seen)/float64(b.N), "runs/op")
				b.ReportMetric(float64(kernel.Nanoseconds())/float64(b.N), "kernel-ns/pkt")
			}
		})
	}
}
