package hook

import (
	"testing"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestUndecidedInKernelCapture: a capture program whose filter cannot
// decide (a protochain walk longer than the translation unrolls) keeps
// the packet flagged, and the Source decides it in userspace with
// libpcap's answer: the long chain ending in UDP is captured, the one
// ending in TCP is counted as filtered in userspace, never silently lost
// or kept.
func TestUndecidedInKernelCapture(t *testing.T) {
	testutils.RunsInGuests(t)
	long := filter.MaxBackwardJumps + 5
	for _, tc := range []struct {
		prog    string
		backend Backend
	}{{"capture_direct", Direct}, {"capture_scratch", Scratch}} {
		t.Run(tc.backend.String(), func(t *testing.T) {
			src, prog := session(t, RingOptions{}, Options{Program: tc.prog, Backend: tc.backend, Hook: 5, Filter: "ip6 protochain 17"})
			if !prog.KernelFilter {
				t.Fatalf("filter not in the kernel: %s", prog.Fallback)
			}
			udpLong, tcpLong, udpShort := testutils.IPv6ExtChainFrame(long, 17), testutils.IPv6ExtChainFrame(long, 6), testutils.IPv6ExtChainFrame(2, 17)
			runPackets(t, prog.Program, 3, udpLong, tcpLong, udpShort, testutils.IPv6ExtChainFrame(2, 6))
			got := capture(t, src, 6)
			var nLong, nShort int
			for _, p := range got {
				switch len(p.Data) {
				case len(udpLong):
					if p.Data[len(p.Data)-8-8] != 17 {
						t.Errorf("captured the long chain that ends in TCP")
					}
					nLong++
				case len(udpShort):
					nShort++
				default:
					t.Errorf("captured a %d-byte packet", len(p.Data))
				}
			}
			if nLong != 3 || nShort != 3 {
				t.Errorf("captured %d long and %d short UDP chains, want 3 and 3", nLong, nShort)
			}
			st := src.Stats()[0]
			if st.Seen != 12 || st.UserFiltered != 3 || st.Captured != 6 {
				t.Errorf("stats %+v: want seen 12, filtered in userspace 3 (the undecided TCP chains), captured 6", st)
			}
		})
	}
}
