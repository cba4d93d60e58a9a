package hook

import (
	"context"
	"io"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// BenchmarkCapture pushes b.N 64-byte packets through a capture program
// (BPF_PROG_TEST_RUN, in batches) while a Source drains the ring into a
// pcapng writer on io.Discard. It reports the share of records the ring
// lost ("lost/op") besides the time per packet: the kernel producer and
// the Go consumer run at the same time, as in a capture.
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
			b.ResetTimer()
			for left := b.N; left > 0; {
				n := min(left, 4096)
				if _, err := prog.Program.Run(&ebpf.RunOptions{Data: pkt, Repeat: uint32(n)}); err != nil {
					b.Fatal(err)
				}
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
			}
		})
	}
}
