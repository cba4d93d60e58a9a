package xdpcap_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// TestCaptureRedirect: an instrumented program that redirects real
// packets (bpf_redirect on the peer end of a veth, sending every frame
// back out of the peer end to the host end) is captured with verdict
// XDP_REDIRECT, and its packets still arrive at the host end: the redirect
// survives the capture program. Real UDP datagrams from the host end drive
// it, so it needs no live-frames test run.
func TestCaptureRedirect(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	pin := pinPath(t)
	h, err := xdpcap.CreatePinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	redirector, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "redirector", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.Mov.Imm(asm.R1, int32(p.PeerIndex)),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRedirect.Call(),
			// return xdpcap_exit(ctx, &hook, XDP_REDIRECT)
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, h.Map().FD()),
			asm.Mov.Imm(asm.R3, int32(xdpcap.Redirect)),
			asm.FnTailCall.Call(),
			asm.Mov.Imm(asm.R0, int32(xdpcap.Redirect)),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer redirector.Close()
	// veth takes redirected frames (ndo_xdp_xmit) only towards an end
	// with XDP: the host end passes everything.
	pass, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(xdpcap.Pass)), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close()

	// The redirector bounces everything, ARP included: the host end knows
	// the peer's MAC without asking.
	p.KnowNeighbours(t)
	for _, at := range []struct {
		ns      func(func() error) error
		prog    *ebpf.Program
		ifindex int
	}{
		{func(fn func() error) error { return testutils.Do(t, p.HostNS, fn) }, pass, p.HostIndex},
		{func(fn func() error) error { return testutils.Do(t, p.PeerNS, fn) }, redirector, p.PeerIndex},
	} {
		err := at.ns(func() error {
			l, err := link.AttachXDP(link.XDPOptions{Program: at.prog, Interface: at.ifindex})
			if err != nil {
				return err
			}
			t.Cleanup(func() { l.Close() })
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{Actions: []xdpcap.Action{xdpcap.Redirect}, CaptureOptions: hook.CaptureOptions{Filter: "udp port 53"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &testutils.PacketCollector{}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()

	hostRx := func() uint64 {
		nh, err := netlink.NewHandleAt(p.HostNS)
		if err != nil {
			t.Fatal(err)
		}
		defer nh.Close()
		l, err := nh.LinkByIndex(p.HostIndex)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Statistics.RxPackets
	}
	before := hostRx()
	const n = 64
	testutils.SendUDP(t, p, 53, n, 10)
	testutils.WaitFor(t, "the redirected packets to be captured", 10*time.Second, func() bool { return sink.Len() >= n })
	testutils.WaitFor(t, "the redirected packets to arrive at the host end", 10*time.Second, func() bool { return hostRx()-before >= n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, pk := range sink.Packets() {
		if pk.VerdictType != pcapng.VerdictXDP || xdpcap.Action(pk.Verdict) != xdpcap.Redirect {
			t.Fatalf("packet with verdict %d/%d, want XDP_REDIRECT", pk.VerdictType, pk.Verdict)
		}
	}
	if got := sink.Len(); got != n {
		t.Fatalf("captured %d packets to udp port 53, want %d", got, n)
	}
}
