package hook

import (
	"context"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
			src, err := NewSource(ring, []Hook{{Programs: []*Program{prog}, Interface: pcapng.Interface{Name: "bench"}}}, SourceOptions{})
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

// BenchmarkReaderSettings compares the ring and writer settings: a capture
// program fills the ring with 64-byte packets (BPF_PROG_TEST_RUN, in
// batches, as fast as the kernel runs it) while a Source writes them to a
// file on /dev/shm, with the defaults and with other ring sizes, wake-up
// thresholds, poll intervals and writer buffer sizes. Reported per
// setting: the reading thread's CPU time per record written
// ("reader-ns/pkt": getrusage of the thread that runs Source.Run, which
// also writes the file) and the share of records lost.
func BenchmarkReaderSettings(b *testing.B) {
	cases := []struct {
		name   string
		ring   RingOptions
		buffer int // pcapng.WriterOptions.BufferSize
	}{
		{"default", RingOptions{}, 0},
		{"ring-2MiB", RingOptions{Size: 2 << 20}, 0},
		{"ring-32MiB", RingOptions{Size: 32 << 20}, 0},
		{"wakeup-64KiB", RingOptions{WakeupBytes: 64 << 10}, 0},
		{"wakeup-256KiB", RingOptions{WakeupBytes: 256 << 10}, 0},
		{"wakeup-4MiB", RingOptions{WakeupBytes: 4 << 20}, 0},
		{"poll-10ms", RingOptions{PollInterval: 10 * time.Millisecond}, 0},
		{"poll-200ms", RingOptions{PollInterval: 200 * time.Millisecond}, 0},
		{"writer-16KiB", RingOptions{}, 16 << 10},
		{"writer-256KiB", RingOptions{}, 256 << 10},
		{"writer-1MiB", RingOptions{}, 1 << 20},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			testutils.RequireRoot(b)
			spec, err := loadCapturetest()
			if err != nil {
				b.Fatal(err)
			}
			ring, err := NewRing(spec, c.ring)
			if err != nil {
				b.Fatal(err)
			}
			prog, err := Load(spec, ring, Options{Program: "capture_direct"})
			if err != nil {
				ring.Close()
				b.Fatal(err)
			}
			src, err := NewSource(ring, []Hook{{Programs: []*Program{prog}, Interface: pcapng.Interface{Name: "bench"}}}, SourceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			f, err := os.CreateTemp("/dev/shm", "bpfcap-settings-*.pcapng")
			if err != nil {
				b.Fatal(err)
			}
			defer os.Remove(f.Name())
			defer f.Close()
			w, err := pcapng.NewWriter(f, pcapng.WriterOptions{BufferSize: c.buffer})
			if err != nil {
				b.Fatal(err)
			}
			w.AddInterface(src.Interfaces()[0])
			ctx, cancel := context.WithCancel(context.Background())
			type result struct {
				cpu time.Duration
				err error
			}
			done := make(chan result, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var r0, r1 unix.Rusage
				unix.Getrusage(unix.RUSAGE_THREAD, &r0)
				err := src.Run(ctx, w)
				unix.Getrusage(unix.RUSAGE_THREAD, &r1)
				cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
				done <- result{cpu, err}
			}()
			pkt := frame(17, 53, 64)
			b.ResetTimer()
			for left := b.N; left > 0; {
				n := min(left, 4096)
				if _, _, err := prog.Program.Benchmark(pkt, n, nil); err != nil {
					b.Fatal(err)
				}
				left -= n
			}
			cancel()
			r := <-done
			b.StopTimer()
			if r.err != nil {
				b.Fatal(r.err)
			}
			st := src.Stats()[0]
			if st.Captured > 0 {
				b.ReportMetric(float64(r.cpu.Nanoseconds())/float64(st.Captured), "reader-ns/pkt")
			}
			if st.Seen > 0 {
				b.ReportMetric(float64(st.Lost)/float64(st.Seen), "lost/op")
			}
		})
	}
}
