package progcap_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	example "github.com/bpfcap/bpfcap/examples/progcap"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/progcap"
)

// running is a Capture whose Run writes into a collector.
type running struct {
	c    *progcap.Capture
	coll *testutils.PacketCollector
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, sel progcap.Selector, opts progcap.Options) *running {
	t.Helper()
	c, err := progcap.Open(sel, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, coll: &testutils.PacketCollector{}, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, r.coll) }()
	t.Cleanup(cancel)
	return r
}

// finish stops the capture, waits for Run and closes it.
func (r *running) finish(t *testing.T) []pcapng.Packet {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of cancelling")
	}
	if err := r.c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return r.coll.Packets()
}

func requireEnabled(t *testing.T, prog *ebpf.Program, want bool) {
	t.Helper()
	got, err := progcap.Enabled(prog)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("capture enabled = %v, want %v", got, want)
	}
}

func udpDstPort(t *testing.T, data []byte, lt layers.LinkType) uint16 {
	t.Helper()
	pkt := gopacket.NewPacket(data, lt, gopacket.Default)
	u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok {
		t.Fatalf("no UDP header in %x", data)
	}
	return uint16(u.DstPort)
}

// TestCaptureXDPIDs captures the XDP example by pinned path: every packet
// a rule matched, with the rule's id, and only those.
func TestCaptureXDPIDs(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	x := loadXDP(t, example.XDPOptions{})
	attachPeer(t, p, x.Program)
	pin := pinPath(t)
	if err := x.Program.Pin(pin); err != nil {
		t.Fatal(err)
	}
	requireEnabled(t, x.Program, false)
	r := start(t, progcap.Selector{Pinned: pin}, progcap.Options{})
	requireEnabled(t, x.Program, true)

	testutils.SendUDP(t, p, 7777, 2, 30) // no rule: not emitted
	testutils.SendUDP(t, p, 5353, 3, 30)
	testutils.SendUDP(t, p, 9, 2, 30)
	testutils.WaitFor(t, "5 packets", 10*time.Second, func() bool { return r.coll.Len() >= 5 })
	pkts := r.finish(t)
	requireEnabled(t, x.Program, false)

	ids := map[uint64]int{}
	for _, pk := range pkts {
		port := udpDstPort(t, pk.Data, layers.LinkTypeEthernet)
		want := map[uint16]uint64{5353: 0x1001, 9: 0x2002}[port]
		if pk.PacketID != want || pk.Flags&pcapng.HasPacketID == 0 {
			t.Errorf("port %d: packet id %#x (flags %#x), want %#x", port, pk.PacketID, pk.Flags, want)
		}
		// The id is epb_packetid (checked above): no comment repeats it.
		if pk.Comment != "" {
			t.Errorf("comment %q, want none", pk.Comment)
		}
		if pk.WireLen != len(pk.Data) || pk.WireLen != 14+20+8+30 {
			t.Errorf("wire length %d, captured %d, want 72 both", pk.WireLen, len(pk.Data))
		}
		if d := time.Since(pk.Timestamp); d < 0 || d > time.Minute {
			t.Errorf("timestamp %v is %v from now", pk.Timestamp, d)
		}
		ids[pk.PacketID]++
	}
	if len(pkts) != 5 || ids[0x1001] != 3 || ids[0x2002] != 2 {
		t.Fatalf("captured %d packets, ids %v; want 5: 3 x 0x1001, 2 x 0x2002", len(pkts), ids)
	}
	if ifs := r.c.Interfaces(); len(ifs) != 1 || ifs[0].LinkType != pcapng.LinkTypeEthernet || !strings.HasPrefix(ifs[0].Name, "prog:progcap_xdp") {
		t.Fatalf("interfaces %+v, want one Ethernet interface prog:progcap_xdp", ifs)
	}
	st := r.c.Stats()
	if st[0].Matched != 5 || st[0].Captured != 5 || st[0].Lost != 0 {
		t.Fatalf("stats %+v", st[0])
	}
}

// TestCaptureFilterWireLen runs the userspace filter: `len` is the wire
// length even when the snap length cut the packet (x/net/bpf's VM would
// see the captured length).
func TestCaptureFilterWireLen(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	x := loadXDP(t, example.XDPOptions{})
	attachPeer(t, p, x.Program)
	r := start(t, progcap.Selector{ID: progID(t, x.Program)}, progcap.Options{Filter: "udp dst port 5353 and len > 100", Snaplen: 64})
	testutils.SendUDP(t, p, 9, 2, 300)    // long, wrong port
	testutils.SendUDP(t, p, 5353, 2, 20)  // short
	testutils.SendUDP(t, p, 5353, 3, 300) // long: wire length 342, captured 64
	testutils.WaitFor(t, "3 packets", 10*time.Second, func() bool { return r.coll.Len() >= 3 })
	// Wait for all 7 records to be read before stopping.
	testutils.WaitFor(t, "7 records", 10*time.Second, func() bool { return r.c.Stats()[0].Matched >= 7 })
	pkts := r.finish(t)
	if len(pkts) != 3 {
		t.Fatalf("captured %d packets, want 3", len(pkts))
	}
	for _, pk := range pkts {
		if len(pk.Data) != 64 || pk.WireLen != 342 || pk.PacketID != 0x1001 {
			t.Errorf("packet: %d bytes of %d, id %#x; want 64 of 342, id 0x1001", len(pk.Data), pk.WireLen, pk.PacketID)
		}
	}
	st := r.c.Stats()[0]
	if st.Matched != 7 || st.Captured != 3 || st.UserFiltered != 4 {
		t.Fatalf("stats %+v, want matched 7, captured 3, filtered in userspace 4", st)
	}
	if ifc := r.c.Interfaces()[0]; ifc.SnapLen != 64 || ifc.Filter == "" {
		t.Fatalf("interface %+v", ifc)
	}
}

// TestCaptureDropsTpBtf captures the tp_btf example by name: UDP to a
// closed port is dropped with reason NO_SOCKET, which is the packet's id;
// the packets are raw IP, on an interface added when the first arrived.
func TestCaptureDropsTpBtf(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	name := uniqueName("pcd")
	d, err := example.LoadDrops(example.DropsOptions{Name: name})
	kconfig.SkipOrFailFeature(t, err, "kfree_skb drop reason (tp_btf example)", "5.17")
	t.Cleanup(func() { d.Close() })
	l, err := d.Attach()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := start(t, progcap.Selector{Name: name}, progcap.Options{Filter: "udp and dst host " + p.PeerIP.String() + " and dst port 9999"})
	testutils.SendUDP(t, p, 9999, 3, 40)
	testutils.WaitFor(t, "3 dropped packets", 10*time.Second, func() bool { return r.coll.Len() >= 3 })
	pkts := r.finish(t)
	requireEnabled(t, d.Program, false)
	want := dropReason(t, "SKB_DROP_REASON_NO_SOCKET")
	ifs := r.c.Interfaces()
	if len(ifs) != 2 || ifs[1].LinkType != pcapng.LinkTypeRaw {
		t.Fatalf("interfaces %+v, want Ethernet (declared) then raw IP", ifs)
	}
	for _, pk := range pkts {
		if pk.Interface != 1 || pk.PacketID != want {
			t.Errorf("packet on interface %d with id %d, want interface 1, id %d (NO_SOCKET)", pk.Interface, pk.PacketID, want)
		}
		if port := udpDstPort(t, pk.Data, layers.LinkTypeRaw); port != 9999 {
			t.Errorf("dst port %d", port)
		}
	}
	if len(pkts) != 3 {
		t.Fatalf("captured %d packets, want 3", len(pkts))
	}
}

// failSink fails every write.
type failSink struct{}

var errSink = errors.New("sink failed")

func (failSink) WritePacket(*pcapng.Packet) error { return errSink }
func (failSink) Flush() error                     { return nil }

// TestCaptureOffOnFailure checks that capture is off after every way out:
// a filter libpcap refuses (before anything is on), a failing sink (Run
// returns the error and turns capture off before Close), and a capture
// left on by a killed bpfcap, which the next one takes over and turns off.
func TestCaptureOffOnFailure(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	x := loadXDP(t, example.XDPOptions{})
	attachPeer(t, p, x.Program)
	sel := progcap.Selector{ID: progID(t, x.Program)}

	if _, err := progcap.Open(sel, progcap.Options{Filter: "udp port"}); err == nil || !strings.Contains(err.Error(), "filter") {
		t.Fatalf("bad filter: %v", err)
	}
	requireEnabled(t, x.Program, false)

	c, err := progcap.Open(sel, progcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), failSink{}) }()
	testutils.SendUDP(t, p, 5353, 1, 10)
	select {
	case err := <-done:
		if !errors.Is(err, errSink) {
			t.Fatalf("Run: %v, want the sink's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not fail within 10 s")
	}
	requireEnabled(t, x.Program, false)
	c.Close()

	// A killed bpfcap: capture on, owned by a process that is gone.
	cfg := configMap(t, x.Program)
	left := make([]byte, 32)
	left[0], left[4], left[16] = 1, 64, 0x39 // enabled, snaplen 64, owner pid 57
	if err := cfg.Put(uint32(0), left); err != nil {
		t.Fatal(err)
	}
	var notices bytes.Buffer
	r := start(t, sel, progcap.Options{Notices: &notices})
	if !strings.Contains(notices.String(), "already on") || !strings.Contains(notices.String(), "pid 57") {
		t.Fatalf("notices: %q", notices.String())
	}
	testutils.SendUDP(t, p, 5353, 1, 10)
	testutils.WaitFor(t, "a packet", 10*time.Second, func() bool { return r.coll.Len() >= 1 })
	r.finish(t)
	requireEnabled(t, x.Program, false)
}

// configMap opens the map of the program's bpfcap_config variable.
func configMap(t *testing.T, prog *ebpf.Program) *ebpf.Map {
	t.Helper()
	info, err := prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := info.MapIDs()
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			t.Fatal(err)
		}
		mi, err := m.Info()
		if err == nil && mi.Name == progcap.ConfigMapName {
			t.Cleanup(func() { m.Close() })
			return m
		}
		m.Close()
	}
	t.Fatal("no .data.bpfcap map")
	return nil
}
