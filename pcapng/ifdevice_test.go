package pcapng

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// TestInterfaceDevice: an interface that names its device and netns
// writes them once, in if_description; its packets on that device and
// netns carry no comment for them (a packet elsewhere still names its
// own), and a Reader gives every packet the interface's device and netns
// unless its comment names others.
func TestInterfaceDevice(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{Application: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ifc := Interface{Name: "tc:veth0:egress", Description: "tc egress of veth0 (tcx)", LinkType: LinkTypeEthernet,
		Device: "veth0", Netns: 4026531840}
	if _, err := w.AddInterface(ifc); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 60)
	t0 := time.Unix(1700000000, 0)
	pkts := []*Packet{
		{Timestamp: t0, Data: data, WireLen: 60, Device: "veth0", Flags: HasNetns, Netns: 4026531840, VerdictType: VerdictNone},
		{Timestamp: t0, Data: data, WireLen: 60, Device: "veth1", Flags: HasNetns | HasPID, PID: 7, Netns: 4026531841, VerdictType: VerdictNone},
		{Timestamp: t0, Data: data, WireLen: 60, Device: "veth0", Flags: HasNetns | HasMark, Mark: 1, Netns: 4026531840, VerdictType: VerdictNone},
	}
	for _, p := range pkts {
		if err := w.WritePacket(p); err != nil {
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
	got := readPackets(t, rd)
	ifs := rd.Interfaces()
	if len(ifs) != 1 || ifs[0].Description != "tc egress of veth0 (tcx); dev=veth0 netns=4026531840" ||
		ifs[0].Device != "veth0" || ifs[0].Netns != 4026531840 {
		t.Fatalf("interfaces read back: %+v", ifs)
	}
	if len(got) != len(pkts) {
		t.Fatalf("read %d packets, wrote %d", len(got), len(pkts))
	}
	for i, want := range []struct {
		comment string
		dev     string
		netns   uint32
	}{
		{"", "veth0", 4026531840},
		{"dev=veth1 pid=7 netns=4026531841", "veth1", 4026531841},
		{"mark=0x1", "veth0", 4026531840},
	} {
		p := got[i]
		if p.Comment != want.comment {
			t.Errorf("packet %d comment %q, want %q", i, p.Comment, want.comment)
		}
		ParseComment(p.Comment, p)
		if p.Device != want.dev || p.Netns != want.netns || p.Flags&HasNetns == 0 {
			t.Errorf("packet %d read back on %q netns %d (flags %#x), want %q netns %d", i, p.Device, p.Netns, p.Flags, want.dev, want.netns)
		}
	}

	// Written again as read, the description is not extended twice.
	var again bytes.Buffer
	w2, err := NewWriter(&again, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.AddInterface(ifs[0]); err != nil {
		t.Fatal(err)
	}
	if err := w2.Flush(); err != nil {
		t.Fatal(err)
	}
	rd2, err := NewReader(bytes.NewReader(again.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd2.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want EOF", err)
	}
	if d := rd2.Interfaces()[0].Description; d != ifs[0].Description {
		t.Errorf("description written again: %q, want %q", d, ifs[0].Description)
	}
}

// TestDescriptionDevice: only a last part made of dev= and netns= words
// names the interface's device.
func TestDescriptionDevice(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		dev   string
		netns uint32
	}{
		{"dev=eth0", "eth0", 0},
		{"netns=12", "", 12},
		{"XDP entry of eth0; dev=eth0", "eth0", 0},
		{"a; b; dev=eth0 netns=5", "eth0", 5},
		{"tc egress of eth0 (tcx)", "", 0},
		{"dev=eth0 pid=4", "", 0},
		{"dev=eth0; filtered in userspace: x", "", 0},
		{"netns=x", "", 0},
		{"", "", 0},
	} {
		dev, netns := descriptionDevice(tc.desc)
		if dev != tc.dev || netns != tc.netns {
			t.Errorf("descriptionDevice(%q) = %q, %d; want %q, %d", tc.desc, dev, netns, tc.dev, tc.netns)
		}
	}
}

// readPackets returns every packet rd has left, failing t on a read error.
func readPackets(t *testing.T, rd *Reader) []*Packet {
	t.Helper()
	var got []*Packet
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
}
