package xdpcap_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// xdpTestMD mirrors struct xdp_md for test runs.
type xdpTestMD struct {
	Data, DataEnd, DataMeta uint32
	IngressIfindex          uint32
	RxQueueIndex            uint32
	EgressIfindex           uint32
}

// TestCaptureRedirect: an instrumented program that redirects (bpf_redirect
// out of the host end of a veth, run in live-frames mode so the redirect
// really happens) is captured with verdict XDP_REDIRECT, and its packets
// still arrive at the peer: the redirect survives the capture program.
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
			asm.Mov.Imm(asm.R1, int32(p.HostIndex)),
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

	// The peer needs XDP to take frames from ndo_xdp_xmit; the host end
	// keeps a program attached so live-frames runs stay cheap.
	pass, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(xdpcap.Pass)), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close()
	for _, at := range []struct {
		ns      func(func() error) error
		ifindex int
	}{
		{func(fn func() error) error { return testutils.Do(t, p.PeerNS, fn) }, p.PeerIndex},
		{func(fn func() error) error { return testutils.Do(t, p.HostNS, fn) }, p.HostIndex},
	} {
		err := at.ns(func() error {
			l, err := link.AttachXDP(link.XDPOptions{Program: pass, Interface: at.ifindex})
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

	c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{Actions: []xdpcap.Action{xdpcap.Redirect}, Filter: "udp port 53"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &testutils.PacketCollector{}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()

	peerRx := func() uint64 {
		nh, err := netlink.NewHandleAt(p.PeerNS)
		if err != nil {
			t.Fatal(err)
		}
		defer nh.Close()
		l, err := nh.LinkByIndex(p.PeerIndex)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Statistics.RxPackets
	}
	before := peerRx()
	const n = 64
	frame := udpFrame(t, 40000, 53, []byte("redirected"))
	err = testutils.Do(t, p.HostNS, func() error {
		_, err := redirector.Run(&ebpf.RunOptions{
			Data:    frame,
			Context: xdpTestMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(p.HostIndex)},
			Repeat:  n,
			Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	testutils.WaitFor(t, "the redirected packets to be captured", 10*time.Second, func() bool { return sink.Len() >= n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := peerRx() - before; got < n {
		t.Fatalf("peer received %d redirected frames, want %d: the redirect did not survive the capture", got, n)
	}
	for _, pk := range sink.Packets() {
		if pk.VerdictType != pcapng.VerdictXDP || xdpcap.Action(pk.Verdict) != xdpcap.Redirect {
			t.Fatalf("packet with verdict %d/%d, want XDP_REDIRECT", pk.VerdictType, pk.Verdict)
		}
	}
}
