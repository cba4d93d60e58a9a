package testutils

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bpfcap/bpfcap/pcapng"
)

// FloodUDP sends size-byte UDP datagrams to to for d from an unconnected
// socket in ns (so the ICMP errors of a port nobody listens on fail no
// write), and returns how many it sent.
func FloodUDP(tb testing.TB, ns netns.NsHandle, to *net.UDPAddr, size int, d time.Duration) int {
	tb.Helper()
	n := 0
	err := Do(tb, ns, func() error {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, size)
		for end := time.Now().Add(d); time.Now().Before(end); {
			for range 64 {
				if _, err := c.WriteToUDP(b, to); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("flood: %v", err)
	}
	return n
}

// CheckRateBound checks the statistics of one hook that captured a flood
// of sent matching packets with a rate bound of rate packets per second
// and CPU over elapsed: it captured at least a burst and at most the bound
// (rate per CPU over elapsed plus a burst of rate/10), counted the rest of
// what matched as shed apart from losses, and delivered what it captured.
func CheckRateBound(tb testing.TB, st pcapng.InterfaceStats, sent, delivered, rate int, elapsed time.Duration) {
	tb.Helper()
	bound := uint64(float64(runtime.NumCPU()) * (float64(rate)*elapsed.Seconds() + float64(rate)/10 + 1))
	tb.Logf("sent %d; stats %+v; bound %d over %v", sent, st, bound, elapsed)
	if st.Matched < uint64(sent)*9/10 {
		tb.Fatalf("matched %d of %d sent: the flood did not reach the hook", st.Matched, sent)
	}
	if st.Captured < uint64(rate/10) || st.Captured > bound {
		tb.Errorf("captured %d, want %d..%d (%d pps per CPU, %d CPUs, %v)", st.Captured, rate/10, bound, rate, runtime.NumCPU(), elapsed)
	}
	if st.Shed == 0 || st.Matched != st.Captured+st.Lost+st.Shed {
		tb.Errorf("shed %d: want matched (%d) = captured (%d) + lost (%d) + shed", st.Shed, st.Matched, st.Captured, st.Lost)
	}
	if uint64(delivered) != st.Captured {
		tb.Errorf("%d packets delivered, the kernel counted %d captured", delivered, st.Captured)
	}
}
