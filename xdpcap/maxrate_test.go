package xdpcap_test

import (
	"context"
	"net"
	"runtime"
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

	sent := 0
	err = testutils.Do(t, p.HostNS, func() error {
		// Unconnected: the ICMP errors (nothing listens) fail no write.
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: p.HostIP})
		if err != nil {
			return err
		}
		defer conn.Close()
		to := &net.UDPAddr{IP: p.PeerIP, Port: port}
		b := make([]byte, 64)
		for end := time.Now().Add(time.Second); time.Now().Before(end); sent++ {
			if _, err := conn.WriteToUDP(b, to); err != nil {
				return err
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
