package hook

import (
	"bytes"
	"testing"

	"github.com/bpfcap/bpfcap/pcapng"
)

// TestCookRaw: a raw IP packet becomes a Linux cooked capture with the
// direction as packet type and the IP version as protocol.
func TestCookRaw(t *testing.T) {
	ip4 := []byte{0x45, 0, 0, 20}
	ip6 := []byte{0x60, 0, 0, 0}
	for _, tc := range []struct {
		ip   []byte
		dir  pcapng.Direction
		want []byte
	}{
		{ip4, pcapng.DirectionInbound, []byte{0, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00}},
		{ip6, pcapng.DirectionOutbound, []byte{0, 4, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd}},
		{ip4, pcapng.DirectionUnknown, []byte{0, 0, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00}},
	} {
		got := cookRaw(nil, tc.ip, tc.dir)
		if !bytes.Equal(got, append(tc.want, tc.ip...)) || len(got) != sllHeaderLen+len(tc.ip) {
			t.Errorf("cookRaw(% x, %v) = % x", tc.ip, tc.dir, got)
		}
	}
}
