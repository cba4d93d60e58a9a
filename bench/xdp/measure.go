package xdpbench

import (
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// onCPU runs fn on a thread bound to cpu, then restores the thread.
func onCPU(cpu int, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return fmt.Errorf("get CPU affinity: %w", err)
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("bind to CPU %d: %w", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &orig)
	return fn()
}

// MedianRuns returns, per program, the median over rounds of its time per
// run on frame (BPF_PROG_TEST_RUN with repeat). Rounds interleave the
// programs, on one CPU, so that noise from other work on the machine hits
// them alike.
func MedianRuns(progs []*ebpf.Program, frame []byte, repeat, rounds int) ([]time.Duration, error) {
	ds := make([][]time.Duration, len(progs))
	err := onCPU(runtime.NumCPU()-1, func() error {
		for r := 0; r < rounds; r++ {
			for i, p := range progs {
				_, d, err := p.Benchmark(frame, repeat, nil)
				if err != nil {
					return fmt.Errorf("test run of program %d: %w", i, err)
				}
				ds[i] = append(ds[i], d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	med := make([]time.Duration, len(progs))
	for i := range ds {
		sort.Slice(ds[i], func(a, b int) bool { return ds[i][a] < ds[i][b] })
		med[i] = ds[i][rounds/2]
	}
	return med, nil
}
