package bpfcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// sparseSource has many interfaces and writes packets on a few of them,
// in the order of its plan (source interface indexes).
type sparseSource struct {
	ifaces []pcapng.Interface
	plan   []int
	sent   []uint64
}

func newSparseSource(n int, plan ...int) *sparseSource {
	s := &sparseSource{plan: plan, sent: make([]uint64, n)}
	for i := range n {
		s.ifaces = append(s.ifaces, pcapng.Interface{Name: "hook" + string(rune('a'+i)), LinkType: pcapng.LinkTypeEthernet, SnapLen: 256})
	}
	return s
}

func (s *sparseSource) Interfaces() []pcapng.Interface { return s.ifaces }

func (s *sparseSource) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	for i, ifc := range s.plan {
		p := pcapng.Packet{Interface: ifc, Timestamp: time.Now(), Data: []byte{byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, WireLen: 14, VerdictType: pcapng.VerdictNone}
		if err := sink.WritePacket(&p); err != nil {
			return err
		}
		s.sent[ifc]++
	}
	return sink.Flush()
}

func (s *sparseSource) Stats() []pcapng.InterfaceStats {
	st := make([]pcapng.InterfaceStats, len(s.sent))
	for i, n := range s.sent {
		st[i] = pcapng.InterfaceStats{Matched: n, Captured: n}
	}
	return st
}

func (s *sparseSource) Close() error { return nil }

// TestSessionInterfacesOnFirstPacket: of a source's 40 interfaces, the
// file holds only the three that captured, in the order they first did,
// each packet on its own hook's interface, with the statistics of those
// three; a capture without packets still names one interface (a link
// type for readers).
func TestSessionInterfacesOnFirstPacket(t *testing.T) {
	src := newSparseSource(40, 7, 31, 7, 2, 31)
	var buf bytes.Buffer
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{src}, Options{InterfacesOnFirstPacket: true})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{src.ifaces[7].Name, src.ifaces[31].Name, src.ifaces[2].Name}
	if len(res.Interfaces) != 3 || len(res.Stats) != 3 {
		t.Fatalf("result: %d interfaces, %d stats, want 3", len(res.Interfaces), len(res.Stats))
	}
	for i, name := range wantNames {
		if res.Interfaces[i].Name != name || res.Stats[i].Captured != src.sent[[]int{7, 31, 2}[i]] {
			t.Errorf("result interface %d: %s captured %d, want %s", i, res.Interfaces[i].Name, res.Stats[i].Captured, name)
		}
	}
	rd, err := pcapng.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rd.Interfaces()[p.Interface].Name)
	}
	want := []string{"hookh", "hook" + string(rune('a'+31)), "hookh", "hookc", "hook" + string(rune('a'+31))}
	if len(got) != len(want) {
		t.Fatalf("file packets on %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("file packet %d on %s, want %s", i, got[i], want[i])
		}
	}
	if n := len(rd.Interfaces()); n != 3 {
		t.Errorf("file has %d interfaces, want 3", n)
	}
	if st := rd.Stats(); len(st) != 3 || st[0].Stats.Captured != 2 || st[2].Stats.Captured != 1 {
		t.Errorf("file statistics: %+v", st)
	}

	buf.Reset()
	res, err = Run(context.Background(), newFileSink(t, &buf), []Source{newSparseSource(40)}, Options{InterfacesOnFirstPacket: true})
	if err != nil {
		t.Fatal(err)
	}
	_, ifaces, _ := readAll(t, buf.Bytes())
	if len(ifaces) != 1 || ifaces[0].Name != "hooka" || len(res.Interfaces) != 1 {
		t.Errorf("a capture without packets has interfaces %+v (result %d), want the first one", ifaces, len(res.Interfaces))
	}
}

// sparseRawSource writes one batch of encoded blocks through the bulk
// path, on the source interfaces of plan, and ends.
type sparseRawSource struct{ sparseSource }

func (s *sparseRawSource) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	var b []byte
	for i, ifc := range s.plan {
		blk := epb(byte(i))
		binary.LittleEndian.PutUint32(blk[8:], uint32(ifc))
		b = append(b, blk...)
		s.sent[ifc]++
	}
	if _, err := sink.(pcapng.RawPacketWriter).WriteRawPackets(b, len(s.plan)); err != nil {
		return err
	}
	return sink.Flush()
}

// TestSessionInterfacesOnFirstPacketRaw: blocks written in bulk add their
// interfaces as the first block of each arrives, and are renumbered to
// them.
func TestSessionInterfacesOnFirstPacketRaw(t *testing.T) {
	src := &sparseRawSource{*newSparseSource(10, 5, 2, 5)}
	var buf bytes.Buffer
	if _, err := Run(context.Background(), newFileSink(t, &buf), []Source{src}, Options{InterfacesOnFirstPacket: true}); err != nil {
		t.Fatal(err)
	}
	rd, err := pcapng.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rd.Interfaces()[p.Interface].Name)
	}
	if want := []string{"hookf", "hookc", "hookf"}; strings.Join(got, " ") != strings.Join(want, " ") || len(rd.Interfaces()) != 2 {
		t.Errorf("packets on %v of %d interfaces, want %v of 2", got, len(rd.Interfaces()), want)
	}
}
