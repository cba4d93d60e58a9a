package hook

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/perfring"
)

// deliverSource builds a Source around a fake ring (no kernel objects) to
// measure the per-record userspace path: event -> pcapng.Packet -> writer.
func deliverSource(tb testing.TB) (*Source, *pcapng.Writer, *perfring.Event) {
	tb.Helper()
	ring := &Ring{clock: Clock{offset: time.Now().UnixNano()}, maxHooks: 64}
	prog := &Program{Options: Options{Hook: 0, LinkType: pcapng.LinkTypeEthernet, Snaplen: 65536}}
	src, err := NewSource(ring, []Hook{{Programs: []*Program{prog}, Interface: pcapng.Interface{Name: "xdp:bench"}, VerdictType: pcapng.VerdictXDP}},
		SourceOptions{DeviceName: func(uint32, uint32) string { return "veth0" }})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := pcapng.NewWriter(io.Discard, pcapng.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, ifc := range src.Interfaces() {
		if _, err := w.AddInterface(ifc); err != nil {
			tb.Fatal(err)
		}
	}
	ev := &perfring.Event{Data: frame(17, 53, 64)}
	ev.Hook, ev.WireLen, ev.CapLen, ev.LinkType = 0, 64, 64, uint16(pcapng.LinkTypeEthernet)
	ev.PacketID, ev.Ifindex, ev.Dir, ev.Flags, ev.Verdict = 0xffff888000000000, 3, perfring.DirIn, perfring.FlagHasVerdict|perfring.FlagHasTask, 2
	copy(ev.Comm[:], "ksoftirqd/1")
	return src, w, ev
}

func TestDeliverAllocatesNothing(t *testing.T) {
	src, w, ev := deliverSource(t)
	if err := src.deliver(ev, w); err != nil { // fills the name caches
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { src.deliver(ev, w) }); n != 0 {
		t.Errorf("delivering a record allocates %.1f times, want 0", n)
	}
}

// BenchmarkDeliver is the userspace cost per captured packet after the
// ring read: conversion to pcapng.Packet and encoding (to io.Discard).
func BenchmarkDeliver(b *testing.B) {
	src, w, ev := deliverSource(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := src.deliver(ev, w); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRingToWriterAllocatesNothing: records a capture program wrote to the
// ring go through the reader, deliver and the pcapng writer without an
// allocation (the ring is read in place; names are cached).
func TestRingToWriterAllocatesNothing(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	spec, err := loadCapturetest()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewRing(spec, RingOptions{Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Load(spec, ring, Options{Program: "capture_direct"})
	if err != nil {
		ring.Close()
		t.Fatal(err)
	}
	src, err := NewSource(ring, []Hook{{Programs: []*Program{prog}, Interface: pcapng.Interface{Name: "alloc"}}}, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w, err := pcapng.NewWriter(io.Discard, pcapng.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.AddInterface(src.Interfaces()[0])
	write := func(ev *perfring.Event) error { return src.deliver(ev, w) }
	pkt := frame(17, 53, 64)
	const n = 2000
	for round := range 2 { // the first round grows the buffers and fills the caches
		if _, _, err := prog.Program.Benchmark(pkt, n, nil); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := ring.Reader().Drain(write)
		runtime.ReadMemStats(&after)
		if err != nil || got != n {
			t.Fatalf("round %d: Drain = %d, %v; want %d records", round, got, err, n)
		}
		if a := after.Mallocs - before.Mallocs; round == 1 && a != 0 {
			t.Errorf("reading and writing %d records allocated %d times, want 0", n, a)
		}
	}
}
