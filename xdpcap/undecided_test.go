package xdpcap_test

import (
	"context"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// TestCaptureUndecided: in an XDP hook capture, a protochain walk longer
// than the kernel filter unrolls is captured flagged and decided in
// userspace: the long chain ending in UDP is kept, the one ending in TCP
// is counted as filtered in userspace, the short UDP chain is kept by
// the kernel filter itself.
func TestCaptureUndecided(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	pin := pinPath(t)
	h, err := xdpcap.CreatePinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fw := loadFirewall(t, firewall.Options{Hook: h})
	c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "ip6 protochain 17", Ring: testRing}, Actions: []xdpcap.Action{xdpcap.Pass}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &testutils.PacketCollector{}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()

	long := filter.MaxBackwardJumps + 5
	udpLong, tcpLong, udpShort := testutils.IPv6ExtChainFrame(long, 17), testutils.IPv6ExtChainFrame(long, 6), testutils.IPv6ExtChainFrame(2, 17)
	for range 2 {
		for _, f := range [][]byte{udpLong, tcpLong, udpShort} {
			if got := runVerdict(t, fw.Program, f); got != xdpcap.Pass {
				t.Fatalf("firewall verdict %s, want pass", got)
			}
		}
	}
	testutils.WaitFor(t, "4 packets captured", 10*time.Second, func() bool { return sink.Len() >= 4 })
	cancel() // Run drains the ring before it returns: a wrongly kept fifth shows up

	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range sink.Packets() {
		if len(p.Data) == len(tcpLong) && p.Data[len(p.Data)-16] != 17 {
			t.Error("captured the long chain that ends in TCP")
		}
	}
	if n := sink.Len(); n != 4 {
		t.Errorf("captured %d packets, want 4", n)
	}
	if st := c.Stats()[0]; st.UserFiltered != 2 {
		t.Errorf("stats %+v: want 2 filtered in userspace (the undecided TCP chains)", st)
	}
}
