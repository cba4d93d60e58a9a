package xdpcap_test

import (
	"context"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// TestCaptureFragsJumbo: with a frags program (BPF_F_XDP_HAS_FRAGS) on a
// veth with a 9000-byte MTU, an 8000-byte datagram is a multi-buffer
// packet; the capture holds all of it (bpf_xdp_load_bytes), with the wire
// length of all buffers, and the datagram still arrives.
func TestCaptureFragsJumbo(t *testing.T) {
	testutils.RunsInGuests(t)
	p, pin, _ := firewallOnVethMTU(t, firewall.Options{Frags: true}, 9000)
	srv := testutils.ListenUDP(t, p.PeerNS, p.PeerIP, 53)
	testutils.WaitFor(t, "a warm-up datagram to arrive", 10*time.Second, func() bool {
		sendUDP(t, p, 0, 53, []byte("warm-up"))
		return testutils.CountDatagrams(srv, 100*time.Millisecond, 100*time.Millisecond) > 0
	})
	testutils.CountDatagrams(srv, 100*time.Millisecond, 100*time.Millisecond)

	c, err := xdpcap.OpenCapture(pin, xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp port 53", Ring: testRing}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Target.Frags {
		t.Fatalf("target %s: the frags owner was not detected", c.Target)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &testutils.PacketCollector{}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()
	payload := make([]byte, 8000)
	for i := range payload {
		payload[i] = byte(i)
	}
	sendUDP(t, p, 0, 53, payload)
	testutils.WaitFor(t, "the jumbo datagram to be captured", 10*time.Second, func() bool { return sink.Len() >= 1 })
	if got := testutils.CountDatagrams(srv, 5*time.Second, 300*time.Millisecond); got != 1 {
		t.Fatalf("the server got %d datagrams, want 1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pk := sink.Packets()[0]
	if pk.WireLen != 14+20+8+8000 || len(pk.Data) != pk.WireLen {
		t.Fatalf("captured %d of %d bytes, want all %d", len(pk.Data), pk.WireLen, 14+20+8+8000)
	}
	if string(pk.Data[42:]) != string(payload) {
		t.Fatal("the captured payload differs from the one sent")
	}
	if pk.VerdictType != pcapng.VerdictXDP || xdpcap.Action(pk.Verdict) != xdpcap.Pass {
		t.Fatalf("verdict %d/%d, want XDP_PASS", pk.VerdictType, pk.Verdict)
	}
}
