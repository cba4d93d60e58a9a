package hook

import (
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestNetmask: Options.Netmask reaches the compiled filter: with
// 255.255.255.0, `ip broadcast` keeps 10.0.0.255; with 0 (tcpdump -r)
// only 255.255.255.255.
func TestNetmask(t *testing.T) {
	testutils.RunsInGuests(t)
	toDst := func(d0, d1, d2, d3 byte) []byte {
		f := frame(17, 53, 100)
		copy(f[30:], []byte{d0, d1, d2, d3})
		return f
	}
	subnet, all, host := toDst(10, 0, 0, 255), toDst(255, 255, 255, 255), toDst(10, 0, 0, 2)
	for _, tc := range []struct {
		netmask uint32
		want    int // packets captured of the three, twice each
	}{{0xffffff00, 4}, {0, 2}} {
		src, prog := session(t, RingOptions{}, Options{Hook: 6, Filter: "ip broadcast", Netmask: tc.netmask})
		if !prog.KernelFilter {
			t.Fatalf("filter not in the kernel: %s", prog.Fallback)
		}
		runPackets(t, prog.Program, 2, subnet, all, host)
		got := capture(t, src, tc.want)
		if len(got) != tc.want {
			t.Errorf("netmask %#x: captured %d, want %d", tc.netmask, len(got), tc.want)
		}
		if st := src.Stats()[0]; st.Captured != uint64(tc.want) {
			t.Errorf("netmask %#x: stats %+v, want %d captured", tc.netmask, st, tc.want)
		}
	}
}
