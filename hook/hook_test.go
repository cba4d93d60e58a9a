package hook

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/perfring"
)

// frame returns an Ethernet/IPv4 frame with the given IP protocol and
// destination port, padded to size bytes.
func frame(proto byte, dport uint16, size int) []byte {
	f := make([]byte, size)
	copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8], ip[9] = 64, proto
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[20:], 40000)
	binary.BigEndian.PutUint16(ip[22:], dport)
	if proto == 17 {
		binary.BigEndian.PutUint16(ip[24:], uint16(size-34))
	} else {
		ip[32] = 0x50
	}
	return f
}

// collector is a PacketWriter that keeps copies of what it is given.
type collector struct {
	mu      sync.Mutex
	pkts    []pcapng.Packet
	flushes int
	want    int
	done    chan struct{}
}

func newCollector(want int) *collector { return &collector{want: want, done: make(chan struct{})} }

func (c *collector) WritePacket(p *pcapng.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := *p
	q.Data = append([]byte(nil), p.Data...)
	c.pkts = append(c.pkts, q)
	if len(c.pkts) == c.want {
		close(c.done)
	}
	return nil
}

func (c *collector) Flush() error {
	c.mu.Lock()
	c.flushes++
	c.mu.Unlock()
	return nil
}

func (c *collector) packets() []pcapng.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pcapng.Packet(nil), c.pkts...)
}

func testSpec(t *testing.T) *ebpf.CollectionSpec {
	t.Helper()
	spec, err := loadCapturetest()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// session loads one program for hook 0 and wraps it into a Source.
func session(t *testing.T, ro RingOptions, o Options) (*Source, *Program) {
	t.Helper()
	testutils.RequireRoot(t)
	spec := testSpec(t)
	ring, err := NewRing(spec, ro)
	if err != nil {
		t.Fatal(err)
	}
	if o.Program == "" {
		o.Program = "capture_direct"
	}
	prog, err := Load(spec, ring, o)
	if err != nil {
		ring.Close()
		t.Fatal(err)
	}
	src, err := NewSource(ring, []Hook{{Programs: []*Program{prog}, Interface: pcapng.Interface{Name: "xdp:test"}, VerdictType: pcapng.VerdictXDP}}, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src, prog
}

// runPackets runs prog repeat times on each packet with BPF_PROG_TEST_RUN.
// It makes one call per run: a call with Repeat > 1 that a signal
// interrupts (EINTR) is restarted from scratch by cilium/ebpf, which would
// run the program more often than asked and spoil exact counts.
func runPackets(t *testing.T, prog *ebpf.Program, repeat int, pkts ...[]byte) {
	t.Helper()
	for _, p := range pkts {
		for range repeat {
			ret, err := prog.Run(&ebpf.RunOptions{Data: p})
			if err != nil {
				t.Fatalf("test run: %v", err)
			}
			if ret != 2 { // XDP_PASS
				t.Fatalf("program returned %d, want XDP_PASS", ret)
			}
		}
	}
}

// capture runs src until want packets arrived (or 10 s passed), then
// stops it and returns what it wrote.
func capture(t *testing.T, src *Source, want int) []pcapng.Packet {
	t.Helper()
	c := newCollector(want)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, c) }()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Errorf("got %d packets after 10s, want %d", len(c.packets()), want)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return c.packets()
}

func TestRingDelivery(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, perf := range []bool{false, true} {
		name := "ringbuf"
		if perf {
			name = "perf"
		}
		t.Run(name, func(t *testing.T) {
			src, prog := session(t, RingOptions{Perf: perf}, Options{Hook: 0})
			before := time.Now()
			pkt := frame(17, 53, 300)
			runPackets(t, prog.Program, 100, pkt)
			got := capture(t, src, 100)
			if len(got) != 100 {
				t.Fatalf("got %d packets, want 100", len(got))
			}
			for i, p := range got {
				if !bytes.Equal(p.Data, pkt) || p.WireLen != len(pkt) {
					t.Fatalf("packet %d: %d bytes (wire %d), want the %d sent", i, len(p.Data), p.WireLen, len(pkt))
				}
				if p.VerdictType != pcapng.VerdictXDP || p.Verdict != 2 || p.Direction != pcapng.DirectionInbound {
					t.Fatalf("packet %d: verdict %v/%d dir %v", i, p.VerdictType, p.Verdict, p.Direction)
				}
				if d := p.Timestamp.Sub(before); d < -time.Millisecond || d > 10*time.Second {
					t.Fatalf("packet %d: timestamp %v is %v after the test run started", i, p.Timestamp, d)
				}
			}
			st := src.Stats()
			if len(st) != 1 || st[0].Seen != 100 || st[0].Matched != 100 || st[0].Captured != 100 || st[0].Lost != 0 {
				t.Errorf("stats %+v, want 100 seen, matched and captured", st)
			}
		})
	}
}

func TestSnaplen(t *testing.T) {
	testutils.RunsInGuests(t)
	src, prog := session(t, RingOptions{}, Options{Hook: 3, Snaplen: 64})
	pkt := frame(6, 80, 1000)
	runPackets(t, prog.Program, 1, pkt)
	got := capture(t, src, 1)
	if len(got) != 1 || len(got[0].Data) != 64 || got[0].WireLen != 1000 || !bytes.Equal(got[0].Data, pkt[:64]) {
		t.Fatalf("got %+v, want the first 64 of 1000 bytes", got)
	}
	if src.Interfaces()[0].SnapLen != 64 {
		t.Errorf("interface snaplen %d, want 64", src.Interfaces()[0].SnapLen)
	}
}

// TestLossCounted fills a one-page ring without reading it: the kernel
// must count every record it could not write, and what it did write must
// all arrive.
func TestLossCounted(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, perf := range []bool{false, true} {
		t.Run(map[bool]string{false: "ringbuf", true: "perf"}[perf], func(t *testing.T) {
			src, prog := session(t, RingOptions{Size: 4096, Perf: perf}, Options{Hook: 1})
			runPackets(t, prog.Program, 200, frame(17, 53, 500))
			st := src.Stats()[0]
			if st.Lost == 0 || st.Captured+st.Lost != 200 || st.Seen != 200 {
				t.Fatalf("stats %+v: want 200 seen = captured + lost, some lost", st)
			}
			got := capture(t, src, int(st.Captured))
			if uint64(len(got)) != st.Captured {
				t.Errorf("read %d records, kernel captured %d", len(got), st.Captured)
			}
			// The losses are reported in the first packet's epb_dropcount.
			var drops uint64
			for _, p := range got {
				if p.Flags&pcapng.HasDropCount != 0 {
					drops += p.DropCount
				}
			}
			if drops != st.Lost {
				t.Errorf("drop counts in packets add up to %d, kernel lost %d", drops, st.Lost)
			}
			t.Logf("captured %d, lost %d", st.Captured, st.Lost)
		})
	}
}

// TestUserspaceFallback loads a filter the kernel does not take and checks
// that the userspace filter keeps only matching packets, counts the rest
// as filtered, and that the user is told once.
func TestUserspaceFallback(t *testing.T) {
	testutils.RunsInGuests(t)
	var notices strings.Builder
	src, prog := session(t, RingOptions{Notices: &notices}, Options{Hook: 2, Filter: "udp port 53", Unfiltered: true})
	if prog.KernelFilter {
		t.Fatal("program filters in the kernel although Unfiltered was set")
	}
	runPackets(t, prog.Program, 10, frame(17, 53, 100), frame(6, 53, 100), frame(17, 54, 100))
	got := capture(t, src, 10)
	// Give stragglers a chance to show up: everything was in the ring
	// before Run started, and Run drains the ring before returning.
	for _, p := range got {
		if p.Data[23] != 17 || binary.BigEndian.Uint16(p.Data[36:]) != 53 {
			t.Fatalf("captured a packet the filter rejects: proto %d port %d", p.Data[23], binary.BigEndian.Uint16(p.Data[36:]))
		}
	}
	if len(got) != 10 {
		t.Errorf("captured %d packets, want 10", len(got))
	}
	st := src.Stats()[0]
	if st.Seen != 30 || st.UserFiltered != 20 || st.Matched != 10 || st.Captured != 10 {
		t.Errorf("stats %+v: want seen 30, filtered in userspace 20, matched 10, captured 10", st)
	}
	if n := strings.Count(notices.String(), "filtering in userspace"); n != 1 {
		t.Errorf("notice printed %d times, want once: %q", n, notices.String())
	}
	if !strings.Contains(src.Interfaces()[0].Description, "filtered in userspace") {
		t.Errorf("interface description %q does not say the filter runs in userspace", src.Interfaces()[0].Description)
	}
}

func TestBadFilter(t *testing.T) {
	testutils.RequireRoot(t)
	spec := testSpec(t)
	ring, err := NewRing(spec, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	_, err = Load(spec, ring, Options{Program: "capture_direct", Filter: "udp prot 53"})
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("bad filter: %v, want libpcap's syntax error", err)
	}
	_, err = Load(spec, ring, Options{Program: "nope"})
	if err == nil || !strings.Contains(err.Error(), `no program "nope"`) {
		t.Errorf("unknown program: %v", err)
	}
	_, err = Load(spec, ring, Options{Program: "capture_direct", Hook: 64})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("hook index 64: %v", err)
	}
}

// TestSharedRing loads two hooks into one ring: records keep their hook
// index and each hook has its own statistics.
func TestSharedRing(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	spec := testSpec(t)
	ring, err := NewRing(spec, RingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p0, err := Load(spec, ring, Options{Program: "capture_direct", Hook: 0})
	if err != nil {
		ring.Close()
		t.Fatal(err)
	}
	p1, err := Load(spec, ring, Options{Program: "capture_scratch", Hook: 5, LinkType: pcapng.LinkTypeEthernet})
	if err != nil {
		p0.Close()
		ring.Close()
		t.Fatal(err)
	}
	src, err := NewSource(ring, []Hook{
		{Programs: []*Program{p0}, Interface: pcapng.Interface{Name: "a"}},
		{Programs: []*Program{p1}, Interface: pcapng.Interface{Name: "b"}},
	}, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	runPackets(t, p0.Program, 3, frame(17, 53, 100))
	runPackets(t, p1.Program, 5, frame(17, 53, 100))
	got := capture(t, src, 8)
	n := map[int]int{}
	for _, p := range got {
		n[p.Interface]++
	}
	if n[0] != 3 || n[1] != 5 {
		t.Errorf("packets per interface %v, want 3 on a and 5 on b", n)
	}
	st := src.Stats()
	if st[0].Captured != 3 || st[1].Captured != 5 || st[0].Seen != 3 || st[1].Seen != 5 {
		t.Errorf("stats %+v", st)
	}
}

// TestDeviceRestriction: with an ifindex configured, packets from other
// devices are not even seen. BPF_PROG_TEST_RUN runs XDP as received on the
// current netns's loopback device (ifindex 1).
func TestDeviceRestriction(t *testing.T) {
	testutils.RunsInGuests(t)
	src, prog := session(t, RingOptions{}, Options{Hook: 0, Ifindex: 1})
	runPackets(t, prog.Program, 5, frame(17, 53, 100))
	got := capture(t, src, 5)
	if len(got) != 5 || got[0].Device != "lo" {
		t.Fatalf("got %d packets, want 5 from lo", len(got))
	}
	if got[0].Device != "lo" {
		t.Errorf("device %q, want lo", got[0].Device)
	}
	if st := src.Stats()[0]; st.Seen != 5 {
		t.Errorf("seen %d, want 5", st.Seen)
	}

	other, prog := session(t, RingOptions{}, Options{Hook: 0, Ifindex: 0x7fffffff})
	runPackets(t, prog.Program, 5, frame(17, 53, 100))
	if st := other.Stats()[0]; st.Seen != 0 || st.Captured != 0 {
		t.Errorf("restricted to another device: stats %+v, want nothing seen", st)
	}
}

// TestEventLayout checks perfring.EventHeader and config against the BTF
// clang emitted for struct bpfcap_event and struct bpfcap_config.
func TestEventLayout(t *testing.T) {
	testutils.RunsInGuests(t)
	spec := testSpec(t)
	testutils.CheckStructLayout(t, spec.Types, "bpfcap_event", reflect.TypeFor[perfring.EventHeader]())
	testutils.CheckStructLayout(t, spec.Types, "bpfcap_config", reflect.TypeFor[config]())
	if uintptr(perfring.EventHeaderSize) != reflect.TypeFor[perfring.EventHeader]().Size() {
		t.Errorf("EventHeaderSize %d, struct is %d", perfring.EventHeaderSize, reflect.TypeFor[perfring.EventHeader]().Size())
	}
	var rec *btf.Struct
	if err := spec.Types.TypeByName("bpfcap_scratch_record", &rec); err != nil {
		t.Fatalf("no struct bpfcap_scratch_record in BTF: %v", err)
	}
	if n := int(rec.Size) - perfring.EventHeaderSize; n != MaxData {
		t.Errorf("a scratch record holds %d bytes of data in C (BPFCAP_MAX_DATA), MaxData is %d", n, MaxData)
	}
	// capture.h sizes its maps for 64 CPUs; NewRing resizes them with
	// the constants below, which must be capture.h's.
	if n := spec.Maps[ScratchMap].MaxEntries / 64; n != nestLevels {
		t.Errorf("BPFCAP_NEST_LEVELS is %d in C, nestLevels %d", n, nestLevels)
	}
	if n := spec.Maps[StatsMap].MaxEntries / 64 / uint32(NumStats); n != defaultMaxHook {
		t.Errorf("BPFCAP_MAX_HOOKS is %d in C, defaultMaxHook %d", n, defaultMaxHook)
	}
	var cfg *btf.Var
	if err := spec.Types.TypeByName(ConfigVar, &cfg); err != nil {
		t.Errorf("no %s in BTF: %v", ConfigVar, err)
	}
}

func TestPermissionError(t *testing.T) {
	err := wrapPerm("create ring buffer map", errors.Join(errors.New("x"), errEPERM()))
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "needs privilege") || strings.Contains(err.Error(), "not supported") {
		t.Errorf("EPERM maps to %v", err)
	}
}

// TestKernelFilter splices "udp port 53" into both back ends: only DNS
// packets reach the ring, and the counters say how many were seen.
func TestKernelFilter(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		prog    string
		backend Backend
	}{{"capture_direct", Direct}, {"capture_scratch", Scratch}} {
		t.Run(tc.backend.String(), func(t *testing.T) {
			var notices strings.Builder
			src, prog := session(t, RingOptions{Notices: &notices}, Options{Program: tc.prog, Backend: tc.backend, Hook: 4, Filter: "udp port 53"})
			if !prog.KernelFilter {
				t.Fatalf("filter not in the kernel: %s", prog.Fallback)
			}
			runPackets(t, prog.Program, 10, frame(17, 53, 100), frame(6, 53, 100), frame(17, 54, 100), frame(17, 53, 1500))
			got := capture(t, src, 20)
			if len(got) != 20 {
				t.Fatalf("captured %d, want 20", len(got))
			}
			for _, p := range got {
				if p.Data[23] != 17 || binary.BigEndian.Uint16(p.Data[36:]) != 53 {
					t.Fatalf("captured a packet the filter rejects")
				}
			}
			st := src.Stats()[0]
			if st.Seen != 40 || st.Matched != 20 || st.Captured != 20 || st.UserFiltered != 0 {
				t.Errorf("stats %+v: want seen 40, matched 20, captured 20", st)
			}
			if notices.Len() != 0 {
				t.Errorf("unexpected notice %q", notices.String())
			}
		})
	}
}

// TestVerifierRefusalFallback loads a program whose spliced filter the
// verifier refuses: Load must load it unfiltered, say so once, and the
// Source must filter in userspace and count what it drops.
func TestVerifierRefusalFallback(t *testing.T) {
	testutils.RunsInGuests(t)
	var notices strings.Builder
	src, prog := session(t, RingOptions{Notices: &notices}, Options{Program: "capture_refused", Hook: 6, Filter: "udp port 53"})
	if prog.KernelFilter || !strings.Contains(prog.Fallback, "verifier refused") {
		t.Fatalf("KernelFilter %v, fallback %q: want the verifier's refusal", prog.KernelFilter, prog.Fallback)
	}
	if n := strings.Count(notices.String(), "filtering in userspace"); n != 1 {
		t.Errorf("notice printed %d times: %q", n, notices.String())
	}
	runPackets(t, prog.Program, 4, frame(17, 53, 100), frame(6, 53, 100))
	got := capture(t, src, 4)
	if len(got) != 4 {
		t.Fatalf("captured %d, want 4", len(got))
	}
	if st := src.Stats()[0]; st.UserFiltered != 4 || st.Captured != 4 {
		t.Errorf("stats %+v: want 4 captured, 4 filtered in userspace", st)
	}
}

// TestTwoLinkTypes: one hook that emits Ethernet and raw IP records gets
// one interface per link type (ExtraLinkTypes); without the extra link
// type its raw records are counted as unknown, not written.
func TestTwoLinkTypes(t *testing.T) {
	testutils.RequireRoot(t)
	for _, withExtra := range []bool{true, false} {
		spec := testSpec(t)
		if err := spec.Variables["capturetest_udp_as_raw"].Set(uint32(1)); err != nil {
			t.Fatal(err)
		}
		ring, err := NewRing(spec, RingOptions{})
		if err != nil {
			t.Fatal(err)
		}
		prog, err := Load(spec, ring, Options{Program: "capture_direct", Hook: 0, LinkType: pcapng.LinkTypeEthernet})
		if err != nil {
			ring.Close()
			t.Fatal(err)
		}
		h := Hook{Programs: []*Program{prog}, Interface: pcapng.Interface{Name: "xdp:two"}}
		if withExtra {
			h.ExtraLinkTypes = []pcapng.LinkType{pcapng.LinkTypeRaw}
		}
		src, err := NewSource(ring, []Hook{h}, SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		runPackets(t, prog.Program, 3, frame(17, 53, 100))
		runPackets(t, prog.Program, 2, frame(6, 80, 100))
		if !withExtra {
			got := capture(t, src, 2)
			if len(got) != 2 || src.Unknown() != 3 {
				t.Errorf("without the raw interface: %d written, %d unknown; want 2 and 3", len(got), src.Unknown())
			}
			src.Close()
			continue
		}
		ifs := src.Interfaces()
		if len(ifs) != 2 || ifs[0].LinkType != pcapng.LinkTypeEthernet || ifs[1].LinkType != pcapng.LinkTypeRaw || ifs[1].Name != "xdp:two" {
			t.Fatalf("interfaces %+v", ifs)
		}
		got := capture(t, src, 5)
		n := map[int]int{}
		for _, p := range got {
			n[p.Interface]++
			if p.Interface == 1 && (p.Data[0] != 0x45 || p.WireLen != 86) {
				t.Errorf("raw packet starts with %#x, wire %d: want the IP header, 86 bytes", p.Data[0], p.WireLen)
			}
		}
		if n[0] != 2 || n[1] != 3 {
			t.Errorf("per interface %v, want 2 Ethernet and 3 raw", n)
		}
		st := src.Stats()
		if st[0].Seen != 5 || st[0].Captured != 2 || st[1].Captured != 3 {
			t.Errorf("stats %+v: want seen 5 on the first, captured split 2 + 3", st)
		}
		src.Close()
	}
}

// TestStaleObject: an object compiled against an older capture.h is
// refused with a message that says to regenerate it.
func TestStaleObject(t *testing.T) {
	spec := testSpec(t)
	spec.Maps[StatsMap].Type = ebpf.PerCPUArray
	if _, err := NewRing(spec, RingOptions{}); !errors.Is(err, errStaleObject) || !strings.Contains(err.Error(), "make generate") {
		t.Errorf("NewRing with an old stats map: %v", err)
	}
	if _, err := Load(spec, &Ring{maxHooks: 64}, Options{Program: "capture_direct"}); !errors.Is(err, errStaleObject) {
		t.Errorf("Load with an old stats map: %v", err)
	}
}
