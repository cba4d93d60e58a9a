package tccap_test

import (
	"context"
	"net"
	"runtime"
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

	sent := 0
	err = hostNS(func() error {
		conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: p.HostIP}, &net.UDPAddr{IP: p.PeerIP, Port: 4011})
		if err != nil {
			return err
		}
		defer conn.Close()
		b := make([]byte, 64)
		for end := time.Now().Add(time.Second); time.Now().Before(end); sent++ {
			// Nothing listens: an ICMP error may fail the next write;
			// count what left.
			if _, err := conn.Write(b); err != nil {
				sent--
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the reader drain the ring
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close()
	elapsed := time.Since(start)
	st := c.Stats()[0]
	bound := uint64(float64(runtime.NumCPU()) * (rate*elapsed.Seconds() + rate/10 + 1))
	t.Logf("sent %d; stats %+v; bound %d over %v", sent, st, bound, elapsed)
	if st.Matched < uint64(sent)*9/10 {
		t.Fatalf("matched %d of %d sent: the flood did not reach the hook", st.Matched, sent)
	}
	if st.Captured < rate/10 || st.Captured > bound {
		t.Errorf("captured %d, want %d..%d", st.Captured, rate/10, bound)
	}
	if st.Shed == 0 || st.Matched != st.Captured+st.Lost+st.Shed {
		t.Errorf("shed %d: want matched (%d) = captured (%d) + lost (%d) + shed", st.Shed, st.Matched, st.Captured, st.Lost)
	}
	if uint64(sink.Len()) != st.Captured {
		t.Errorf("%d packets delivered, the kernel counted %d captured", sink.Len(), st.Captured)
	}
}
