package pcapng

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseCommentRoundTrip: what the writer puts in opt_comment comes
// back into the packet's fields, a comm with spaces included; the hook
// and the direction come back from the interface's name and epb_flags,
// not from the comment, which leaves them out.
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
	for _, key := range []string{"hook=", "dir=", "verdict="} {
		if strings.Contains(p.Comment, key) {
			t.Errorf("comment %q repeats %s, which a standard field carries", p.Comment, key)
		}
	}
	got := Packet{Hook: p.Hook, Direction: p.Direction}
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
	// Files of earlier versions repeated the hook, verdict and direction.
	old := Packet{Hook: "tc:eth0:egress"}
	if r := ParseComment("hook=tc:eth0:egress verdict=TC_ACT_OK dev=eth0 dir=out netns=7", &old); r != "" ||
		old.Hook != "tc:eth0:egress" || old.Direction != DirectionOutbound || old.Device != "eth0" || old.Netns != 7 {
		t.Errorf("an earlier comment gave %+v, rest %q", old, r)
	}
}

// TestCommentOnlyWhatNoFieldCarries: a packet whose metadata all has
// standard options (direction, verdict, packet id) gets no comment; a hook
// other than the interface's name is written, since nothing else says it.
func TestCommentOnlyWhatNoFieldCarries(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := w.AddInterface(Interface{Name: "tc:eth0:egress", LinkType: LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	pkts := []Packet{
		{Interface: idx, Timestamp: time.Unix(1, 0), Data: make([]byte, 20), WireLen: 20, Hook: "tc:eth0:egress",
			Direction: DirectionOutbound, VerdictType: VerdictTC, Verdict: 2, Flags: HasPacketID, PacketID: 9},
		{Interface: idx, Timestamp: time.Unix(2, 0), Data: make([]byte, 20), WireLen: 20, Hook: "prog:other", VerdictType: VerdictNone},
		{Interface: idx, Timestamp: time.Unix(3, 0), Data: make([]byte, 20), WireLen: 20, VerdictType: VerdictNone},
	}
	for i := range pkts {
		if err := w.WritePacket(&pkts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for i, wantComment := range []string{"", "hook=prog:other", ""} {
		p, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if p.Comment != wantComment {
			t.Errorf("packet %d: comment %q, want %q", i, p.Comment, wantComment)
		}
		if i == 0 && (p.Direction != DirectionOutbound || p.VerdictType != VerdictTC || p.Verdict != 2 || p.PacketID != 9 || p.Hook != "tc:eth0:egress") {
			t.Errorf("packet 0 read back as %+v", p)
		}
		if i == 1 {
			ParseComment(p.Comment, p)
			if p.Hook != "prog:other" {
				t.Errorf("packet 1 hook %q, want prog:other", p.Hook)
			}
		}
	}
	// The blocks are as small as their options: header 28 + data 20 +
	// trailer 4, plus epb_flags 8 + epb_packetid 12 + epb_verdict 16 + end
	// of options 4; a comment of 15 bytes 20 + end 4; nothing more.
	var sizes []int
	for b := buf.Bytes(); len(b) >= 8; b = b[le.Uint32(b[4:]):] {
		if le.Uint32(b) == blockEPB {
			sizes = append(sizes, int(le.Uint32(b[4:])))
		}
	}
	if want := []int{92, 76, 52}; !slices.Equal(sizes, want) {
		t.Errorf("EPB sizes %v, want %v", sizes, want)
	}
}

// TestCommentNetnsChanges: the netns text is reused only for the same
// netns; each packet's comment names its own.
func TestCommentNetnsChanges(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := w.AddInterface(Interface{Name: "tp_btf:net_dev_xmit", LinkType: LinkTypeEthernet})
	if err != nil {
		t.Fatal(err)
	}
	netns := []uint32{4026531840, 4026531840, 7, 4026532000, 4026531840}
	for _, n := range netns {
		p := Packet{Interface: idx, Timestamp: time.Unix(1, 0), Data: make([]byte, 20), WireLen: 20, VerdictType: VerdictNone, Flags: HasNetns, Netns: n}
		if err := w.WritePacket(&p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rd, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range netns {
		p, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		var got Packet
		if ParseComment(p.Comment, &got); got.Netns != want || got.Flags&HasNetns == 0 {
			t.Errorf("packet %d: comment %q, want netns %d", i, p.Comment, want)
		}
	}
}

// TestParseCommentSourceWords: the words a source adds after the metadata
// (location, parent, stack) end a comm and come back as the text left.
func TestParseCommentSourceWords(t *testing.T) {
	for _, c := range []struct{ comment, comm, rest string }{
		{"pid=7 comm=Web Content location=nf_hook_slow+0x9d stack=a<-b", "Web Content", "location=nf_hook_slow+0x9d stack=a<-b"},
		{"pid=7 comm=swapper/0 netns=1 location=x parent=0x1", "swapper/0", "location=x parent=0x1"},
	} {
		var p Packet
		rest := ParseComment(c.comment, &p)
		if p.Comm != c.comm || p.PID != 7 || rest != c.rest {
			t.Errorf("%q: comm %q, pid %d, rest %q; want %q, 7, %q", c.comment, p.Comm, p.PID, rest, c.comm, c.rest)
		}
	}
	if rest := ParseComment("location=ip_rcv_core+0x1a", &Packet{}); rest != "location=ip_rcv_core+0x1a" {
		t.Errorf("a comment of source words only came back as %q", rest)
	}
}
