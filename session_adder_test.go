package bpfcap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// growingSource starts with one interface and adds a second one (another
// link type) through InterfaceAdder after its first packet, as bpfcap prog
// does when a new link type arrives.
type growingSource struct {
	mu     sync.Mutex
	ifaces []pcapng.Interface
	sent   []uint64
}

func (g *growingSource) Interfaces() []pcapng.Interface {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ifaces[:len(g.ifaces):len(g.ifaces)]
}

func (g *growingSource) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	adder, ok := sink.(InterfaceAdder)
	if !ok {
		return errors.New("sink is not an InterfaceAdder")
	}
	write := func(ifc int, n int) error {
		p := pcapng.Packet{Interface: ifc, Timestamp: time.Now(), Data: make([]byte, n), WireLen: n, VerdictType: pcapng.VerdictNone}
		if err := sink.WritePacket(&p); err != nil {
			return err
		}
		g.mu.Lock()
		g.sent[ifc]++
		g.mu.Unlock()
		return sink.Flush()
	}
	if err := write(0, 60); err != nil {
		return err
	}
	ifc := pcapng.Interface{Name: "grow", LinkType: pcapng.LinkTypeRaw, SnapLen: 100}
	idx, err := adder.AddInterface(ifc)
	if err != nil {
		return err
	}
	g.mu.Lock()
	if idx != len(g.ifaces) {
		g.mu.Unlock()
		return errors.New("AddInterface returned the wrong index")
	}
	g.ifaces = append(g.ifaces, ifc)
	g.sent = append(g.sent, 0)
	g.mu.Unlock()
	for i := 0; i < 3; i++ {
		if err := write(idx, 40); err != nil {
			return err
		}
	}
	return write(0, 60)
}

func (g *growingSource) Stats() []pcapng.InterfaceStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := make([]pcapng.InterfaceStats, len(g.sent))
	for i, n := range g.sent {
		st[i] = pcapng.InterfaceStats{Matched: n, Captured: n}
	}
	return st
}

func (g *growingSource) Close() error { return nil }

// TestRunInterfaceAdder checks that a source can add an interface while it
// runs, next to a source with a fixed interface: the packets land on the
// right interfaces of the file and the statistics follow the session's
// numbering.
func TestRunInterfaceAdder(t *testing.T) {
	testutils.RunsInGuests(t)
	var buf bytes.Buffer
	fixed := &fakeSource{name: "fixed", interval: time.Millisecond, limit: 2}
	g := &growingSource{ifaces: []pcapng.Interface{{Name: "grow", LinkType: pcapng.LinkTypeEthernet}}, sent: []uint64{0}}
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{g, fixed}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 7 {
		t.Fatalf("written %d, want 7", res.Written)
	}
	// Session order: grow/eth (0), fixed (1), grow/raw (2, added later).
	want := []struct {
		name     string
		lt       pcapng.LinkType
		captured uint64
	}{{"grow", pcapng.LinkTypeEthernet, 2}, {"fixed", pcapng.LinkTypeEthernet, 2}, {"grow", pcapng.LinkTypeRaw, 3}}
	if len(res.Interfaces) != len(want) || len(res.Stats) != len(want) {
		t.Fatalf("result has %d interfaces and %d stats, want %d", len(res.Interfaces), len(res.Stats), len(want))
	}
	for i, w := range want {
		if res.Interfaces[i].Name != w.name || res.Interfaces[i].LinkType != w.lt || res.Stats[i].Captured != w.captured {
			t.Errorf("interface %d: %s/%v captured %d, want %s/%v captured %d", i, res.Interfaces[i].Name, res.Interfaces[i].LinkType, res.Stats[i].Captured, w.name, w.lt, w.captured)
		}
	}
	rd, err := pcapng.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	perIf := map[int]int{}
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if p.Interface == 2 && len(p.Data) != 40 || p.Interface != 2 && len(p.Data) != 60 {
			t.Errorf("packet of %d bytes on interface %d", len(p.Data), p.Interface)
		}
		perIf[p.Interface]++
	}
	if perIf[0] != 2 || perIf[1] != 2 || perIf[2] != 3 {
		t.Errorf("packets per interface in the file: %v, want 0:2 1:2 2:3", perIf)
	}
	if got := rd.Interfaces(); len(got) != 3 || got[2].LinkType != pcapng.LinkTypeRaw {
		t.Errorf("file interfaces: %+v", got)
	}
	if st := rd.Stats(); len(st) != 3 || st[2].Interface != 2 || st[2].Stats.Captured != 3 {
		t.Errorf("file statistics: %+v", st)
	}
}
