package xdpcap_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// TestCaptureMaxRate floods UDP into the peer end of a veth captured at
// its XDP entry with MaxRate set: the capture keeps within the bound (rate
// per CPU over its lifetime plus the bursts) and counts the rest of the
// matched packets as shed, apart from losses.
func TestCaptureMaxRate(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	const rate, port = 100, 4021
	start := time.Now()
	var c *xdpcap.Capture
	err := testutils.Do(t, p.PeerNS, func() error {
		var err error
		c, err = xdpcap.OpenDeviceCapture(p.PeerName, xdpcap.CaptureOptions{CaptureOptions: hook.CaptureOptions{Filter: "udp dst port 4021", Ring: testRing, MaxRate: rate}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &testutils.PacketCollector{}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()

	sent := testutils.FloodUDP(t, p.HostNS, &net.UDPAddr{IP: p.PeerIP, Port: port}, 64, time.Second)
	time.Sleep(200 * time.Millisecond) // let the reader drain the ring
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close()
	elapsed := time.Since(start)
	testutils.CheckRateBound(t, c.Stats()[0], sent, sink.Len(), rate, elapsed)
}
