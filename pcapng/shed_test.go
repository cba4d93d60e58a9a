package pcapng

import (
	"bytes"
	"testing"
	"time"
)

// Packets a rate bound shed are written apart from losses: in isb_osdrop
// with the skipped ones (not isb_ifdrop), and named in the ISB comment.
func TestStatsShed(t *testing.T) {
	var buf bytes.Buffer
	pw, err := NewWriter(&buf, WriterOptions{Application: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.AddInterface(Interface{Name: "tp_btf:net_dev_xmit", LinkType: LinkTypeEthernet, SnapLen: 128}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 0)
	in := InterfaceStats{Seen: 100, SeenCounted: true, Matched: 90, Captured: 20, Lost: 5, Skipped: 3, Shed: 65}
	if err := pw.WriteStats(0, t0, t0, in); err != nil {
		t.Fatal(err)
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := rd.Next(); err != nil {
			break
		}
	}
	st := rd.Stats()
	want := InterfaceStats{Seen: 100, SeenCounted: true, Matched: 90, Captured: 20, Lost: 5, Skipped: 3 + 65}
	if len(st) != 1 || st[0].Stats != want || st[0].Comment != "shed by the rate bound: 65" {
		t.Errorf("stats: %+v, want %+v and the shed count in the comment", st, want)
	}
}
