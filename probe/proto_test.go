package probe

import (
	"slices"
	"testing"

	"github.com/bpfcap/bpfcap/linktype"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestProtoLinkTypes: each proto keyword a tracing hook accepts captures
// the link type the link-type table gives it, and the others are refused.
func TestProtoLinkTypes(t *testing.T) {
	want := []string{"eth", "ieee802_11", "ip", "ip4", "ip6"}
	if got := ProtoNames(); !slices.Equal(got, want) {
		t.Errorf("ProtoNames() = %v, want %v", got, want)
	}
	for _, p := range want {
		h, lt, extra, err := chooseHeader(p, "")
		e, _ := linktype.ByProto(p)
		if err != nil || lt != pcapng.LinkType(e.LinkType) || extra != nil {
			t.Errorf("proto %s: header %d, link type %v, extra %v, %v; want link type %d", p, h, lt, extra, err, e.LinkType)
		}
	}
	if _, lt, _, err := chooseHeader("ip", ""); err != nil || lt != pcapng.LinkTypeRaw {
		t.Errorf("proto ip: link type %v (%v), want LINKTYPE_RAW", lt, err)
	}
	for _, p := range []string{"sll", "sll2", "ETH", "ppp"} {
		if _, _, _, err := chooseHeader(p, ""); err == nil {
			t.Errorf("proto %s accepted: tracing hooks cannot start records there", p)
		}
	}
}
