package pcapng

import (
	"bytes"
	"testing"
	"time"
)

// TestParseCommentRoundTrip: what the writer puts in opt_comment comes
// back into the packet's fields, a comm with spaces included.
func TestParseCommentRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := w.AddInterface(Interface{Name: "tp_btf:kfree_skb", LinkType: LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	in := Packet{Interface: idx, Timestamp: time.Unix(1, 0), Data: make([]byte, 20), WireLen: 20,
		DropReason: "NO_SOCKET", Device: "veth0", Direction: DirectionOutbound,
		Flags: HasPID | HasNetns | HasMark, PID: 7, Comm: "Web Content", Netns: 4026531840, Mark: 0xbeef, Comment: "free text"}
	if err := w.WritePacket(&in); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	var got Packet
	rest := ParseComment(p.Comment, &got)
	if got.Hook != "tp_btf:kfree_skb" || got.DropReason != "NO_SOCKET" || got.Device != "veth0" || got.Direction != DirectionOutbound ||
		got.PID != 7 || got.Comm != "Web Content" || got.Netns != 4026531840 || got.Flags&(HasPID|HasNetns) != HasPID|HasNetns {
		t.Errorf("parsed %+v from %q", got, p.Comment)
	}
	if got.Mark != 0xbeef || rest != "free text" {
		t.Errorf("mark %#x, rest %q; want 0xbeef and the free text", got.Mark, rest)
	}
	if r := ParseComment("just a comment", &Packet{}); r != "just a comment" {
		t.Errorf("a foreign comment came back as %q", r)
	}
}
