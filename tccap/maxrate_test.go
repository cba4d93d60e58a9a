package tccap_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/tccap"
)

// TestCaptureMaxRate floods UDP out of the host end with MaxRate set: the
// egress capture keeps within the bound (rate per CPU over its lifetime
// plus the bursts) and counts the rest of the matched packets as shed,
// apart from losses.
func TestCaptureMaxRate(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	hostNS := func(fn func() error) error { return testutils.Do(t, p.HostNS, fn) }
	sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4010, 1) // warm up ARP
	const rate = 100
	start := time.Now()
	var c *tccap.Capture
	err := hostNS(func() error {
		var err error
		c, err = tccap.Open(p.HostName, tccap.Options{CaptureOptions: hook.CaptureOptions{Filter: "udp dst port 4011", Ring: testRing, MaxRate: rate}, Directions: []tccap.Direction{tccap.Egress}})
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

	sent := testutils.FloodUDP(t, p.HostNS, &net.UDPAddr{IP: p.PeerIP, Port: 4011}, 64, time.Second)
	time.Sleep(200 * time.Millisecond) // let the reader drain the ring
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close()
	elapsed := time.Since(start)
	testutils.CheckRateBound(t, c.Stats()[0], sent, sink.Len(), rate, elapsed)
}
