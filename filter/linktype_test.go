package filter

import (
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/linktype"
)

// TestLinkTypeTableIsLibpcaps: every entry of the link-type table has
// libpcap's numbers and name, so that answering from the table and
// asking libpcap agree (files written with the table's LINKTYPE_ read
// back as its DLT_, names parse to the same value).
func TestLinkTypeTableIsLibpcaps(t *testing.T) {
	for _, e := range linktype.Table() {
		if got := dltToLinktype(e.DLT); got != uint32(e.LinkType) {
			t.Errorf("%s: libpcap writes DLT %d as LINKTYPE %d, the table says %d", e.Proto, e.DLT, got, e.LinkType)
		}
		if got := linktypeToDLT(uint32(e.LinkType)); got != e.DLT {
			t.Errorf("%s: libpcap reads LINKTYPE %d as DLT %d, the table says %d", e.Proto, e.LinkType, got, e.DLT)
		}
		if got := dltName(e.DLT); !strings.EqualFold(got, e.Name) {
			t.Errorf("%s: libpcap names DLT %d %q, the table %q", e.Proto, e.DLT, got, e.Name)
		}
		if got, ok := dltByName(e.Name); !ok || got != e.DLT {
			t.Errorf("%s: libpcap reads name %s as DLT %d (%v), the table says %d", e.Proto, e.Name, got, ok, e.DLT)
		}
		lt, err := ParseProto(e.Proto)
		if err != nil || uint32(lt) != e.DLT || lt.String() != e.Proto || lt.FileLinkType() != uint32(e.LinkType) || LinkTypeFromFile(uint32(e.LinkType)) != lt {
			t.Errorf("proto %s: ParseProto %d (%v), String %q, FileLinkType %d; the table says DLT %d, LINKTYPE %d", e.Proto, lt, err, lt.String(), lt.FileLinkType(), e.DLT, e.LinkType)
		}
	}
}
