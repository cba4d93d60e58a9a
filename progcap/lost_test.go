package progcap_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/progcap"
)

// TestCaptureLostCounted fills the program's ring (4 MiB) before reading
// it, by running the XDP example 60000 times with BPF_PROG_TEST_RUN: the
// records the ring had no room for are counted, reported as the first
// interface's Lost and as epb_dropcount, and every run is either
// captured or lost.
func TestCaptureLostCounted(t *testing.T) {
	testutils.RunsInGuests(t)
	x := loadXDP(t, example.XDPOptions{})
	c, err := progcap.Open(progcap.Selector{ID: progID(t, x.Program)}, progcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := costFrame(t)
	const runs = 60000
	if _, err := x.Program.Run(&ebpf.RunOptions{Data: frame, Repeat: runs}); err != nil {
		t.Fatal(err)
	}
	// The kernel restarts an interrupted test run from scratch (EINTR), so
	// count the runs from the program's own per-CPU hit counter.
	var hits []uint64
	if err := x.Hits.Lookup(uint32(0), &hits); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, h := range hits {
		total += h
	}
	if total < runs {
		t.Fatalf("the program ran %d times, want >= %d", total, runs)
	}
	coll := &testutils.PacketCollector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, coll) }()
	testutils.WaitFor(t, "the ring to be read", 20*time.Second, func() bool {
		st := c.Stats()[0]
		return st.Captured+st.Lost >= total
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := c.Stats()[0]
	t.Logf("%d runs: captured %d, lost %d", total, st.Captured, st.Lost)
	if st.Lost == 0 || st.Captured == 0 || st.Captured+st.Lost != total {
		t.Fatalf("captured %d + lost %d, want both > 0 adding up to %d runs", st.Captured, st.Lost, total)
	}
	var dropped uint64
	for _, p := range coll.Packets() {
		if p.Flags&pcapng.HasDropCount != 0 {
			dropped += p.DropCount
		}
	}
	if dropped != st.Lost {
		t.Fatalf("epb_dropcount adds up to %d, want %d", dropped, st.Lost)
	}
}
