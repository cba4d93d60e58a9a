package perfring

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

func record(capLen int, extra int) []byte {
	b := make([]byte, EventHeaderSize+capLen+extra)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], 123456789)
	ne.PutUint64(b[8:], 0xffff888000001234)
	ne.PutUint32(b[16:], 3)
	ne.PutUint32(b[20:], 1500)
	ne.PutUint32(b[24:], uint32(capLen))
	ne.PutUint32(b[28:], 7)
	ne.PutUint32(b[32:], 4026531840)
	ne.PutUint32(b[36:], 0x2a)
	ne.PutUint32(b[40:], 4242)
	ne.PutUint32(b[44:], 5)
	ne.PutUint32(b[48:], uint32(0xffffffff)) // -1
	ne.PutUint32(b[52:], 2)
	ne.PutUint16(b[56:], 101)
	b[58] = DirOut
	b[59] = FlagHasReason | FlagHasTask
	copy(b[64:], "ping")
	ne.PutUint64(b[80:], 0x1000000000007)    // parent_id
	ne.PutUint64(b[88:], 0xffffffff81f1add0) // location
	ne.PutUint32(b[96:], uint32(0xfffffff2)) // stack_id -14
	for i := range capLen {
		b[EventHeaderSize+i] = byte(i)
	}
	return b
}

func TestDecode(t *testing.T) {
	testutils.RunsInGuests(t)
	var ev Event
	raw := record(100, 7) // perf records may carry trailing bytes
	if err := Decode(raw, &ev); err != nil {
		t.Fatal(err)
	}
	h := ev.EventHeader
	if h.Timestamp != 123456789 || h.PacketID != 0xffff888000001234 || h.Hook != 3 || h.WireLen != 1500 || h.CapLen != 100 ||
		h.Ifindex != 7 || h.Netns != 4026531840 || h.Mark != 0x2a || h.PID != 4242 || h.Reason != 5 || h.Verdict != -1 ||
		h.Queue != 2 || h.LinkType != 101 || h.Dir != DirOut || h.Flags != FlagHasReason|FlagHasTask || h.CommString() != "ping" ||
		h.ParentID != 0x1000000000007 || h.Location != 0xffffffff81f1add0 || h.StackID != -14 {
		t.Errorf("decoded %+v", h)
	}
	if len(ev.Data) != 100 || ev.Data[99] != 99 || &ev.Data[0] != &raw[EventHeaderSize] {
		t.Errorf("data: %d bytes, not aliasing the record", len(ev.Data))
	}
	if err := Decode(raw[:EventHeaderSize-1], &ev); !errors.Is(err, ErrShortRecord) {
		t.Errorf("short header: %v", err)
	}
	if err := Decode(raw[:EventHeaderSize+50], &ev); !errors.Is(err, ErrShortRecord) {
		t.Errorf("cap_len beyond the record: %v", err)
	}
	full := record(0, 0)
	copy(full[64:], "0123456789abcdef")
	Decode(full, &ev)
	if ev.CommString() != "0123456789abcdef" {
		t.Errorf("comm without NUL: %q", ev.CommString())
	}
	if n := testing.AllocsPerRun(100, func() { Decode(raw, &ev) }); n != 0 {
		t.Errorf("Decode allocates %.0f times", n)
	}
}

func TestReaderErrors(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := NewReader(m, Options{}); err == nil || !strings.Contains(err.Error(), "want ringbuf or perf event array") {
		t.Errorf("array map: %v", err)
	}
}

// TestReaderNoData: Drain on an empty ring returns at once; ReadBatch
// waits one poll interval; Close interrupts a waiting reader.
func TestReaderNoData(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for _, spec := range []*ebpf.MapSpec{
		{Type: ebpf.RingBuf, MaxEntries: 4096},
		{Type: ebpf.PerfEventArray},
	} {
		t.Run(spec.Type.String(), func(t *testing.T) {
			m, err := ebpf.NewMap(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			r, err := NewReader(m, Options{PollInterval: 100 * time.Millisecond, PerCPUBuffer: 4096})
			if err != nil {
				t.Fatal(err)
			}
			fn := func(*Event) error { t.Error("record from an empty ring"); return nil }
			start := time.Now()
			if n, err := r.Drain(fn); n != 0 || err != nil {
				t.Errorf("Drain = %d, %v", n, err)
			}
			if el := time.Since(start); el > 50*time.Millisecond {
				t.Errorf("Drain of an empty ring took %v", el)
			}
			start = time.Now()
			if n, err := r.ReadBatch(fn); n != 0 || err != nil {
				t.Errorf("ReadBatch = %d, %v", n, err)
			}
			if el := time.Since(start); el < 90*time.Millisecond || el > 2*time.Second {
				t.Errorf("ReadBatch on an empty ring took %v, want about the poll interval", el)
			}
			r2, err := NewReader(m, Options{PollInterval: 10 * time.Second, PerCPUBuffer: 4096})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := r2.ReadBatch(fn); done <- err }()
			time.AfterFunc(50*time.Millisecond, func() { r2.Close() })
			select {
			case err := <-done:
				if !errors.Is(err, ErrClosed) {
					t.Errorf("ReadBatch after Close: %v, want ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not interrupt ReadBatch")
			}
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	raw := record(64, 0)
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRingReadsInPlace: records a program writes to a BPF ring buffer come
// out whole and in order, also those that wrap around the end of the ring,
// and each one's space is given back as it is read (the ring holds fewer
// records than are written in all).
func TestRingReadsInPlace(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	prog := recordWriter(t, ring, true)
	r, err := NewReader(ring, Options{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const perRound, rounds = 25, 8 // 25 records of 96 bytes fill 2400 of 4096 bytes
	var last uint64
	total := 0
	for round := range rounds {
		if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: perRound}); err != nil {
			t.Fatal(err)
		}
		n, err := r.Drain(func(ev *Event) error {
			if ev.Timestamp < last || len(ev.Data) != 8 || binary.NativeEndian.Uint32(ev.Data) != 0x5a5a5a5a {
				t.Errorf("round %d: record ts %d (last %d), data %x", round, ev.Timestamp, last, ev.Data)
			}
			last = ev.Timestamp
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != perRound {
			t.Fatalf("round %d: read %d records, want %d", round, n, perRound)
		}
		total += n
	}
	if r.Records() != uint64(total) || r.Malformed() != 0 {
		t.Errorf("Records %d, Malformed %d; want %d, 0", r.Records(), r.Malformed(), total)
	}
	// An error from the callback ends the read and comes back as it is.
	prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: 3})
	stop := errors.New("stop")
	if n, err := r.Drain(func(*Event) error { return stop }); n != 1 || err != stop {
		t.Errorf("Drain with a failing callback = %d, %v; want 1, the callback's error", n, err)
	}
	if n, _ := r.Drain(func(*Event) error { return nil }); n != 2 {
		t.Errorf("after the failed callback, %d records left, want 2", n)
	}
	// Reading allocates nothing per record: fill the ring, and count the
	// allocations of one Drain.
	prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: perRound})
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	n, err := r.Drain(func(*Event) error { return nil })
	runtime.ReadMemStats(&ms1)
	if err != nil || n != perRound {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if a := ms1.Mallocs - ms0.Mallocs; a != 0 {
		t.Errorf("Drain of %d records allocated %d times", n, a)
	}
}

// TestDrainSlowReader: Drain empties a ring that holds more than a slow
// reader reads in one poll interval (at the end of a capture whose reader
// fell behind, every record captured is still written).
func TestDrainSlowReader(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	prog := recordWriter(t, ring, false)
	r, err := NewReader(ring, Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// 8,000 records of 120 bytes with their ring headers: 1 MiB holds them
	// all.
	const records = 8000
	if _, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: records}); err != nil {
		t.Fatal(err)
	}
	// 20 µs per record: 160 ms in all, 32 poll intervals.
	start := time.Now()
	n, err := r.Drain(func(*Event) error {
		for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
		}
		return nil
	})
	if err != nil || n != records {
		t.Fatalf("Drain = %d, %v after %v; want %d records", n, err, time.Since(start), records)
	}
}

// recordWriter returns a socket filter program (closed when t ends) that
// writes one record of EventHeaderSize+8 bytes to ring per run: the header
// zeroed but for cap_len 8, then 8 data bytes; with stamped, the time stamp
// is bpf_ktime_get_ns and the data starts with 0x5a5a5a5a.
func recordWriter(t *testing.T, ring *ebpf.Map, stamped bool) *ebpf.Program {
	t.Helper()
	const size = int16(EventHeaderSize + 8)
	insns := asm.Instructions{asm.Mov.Imm(asm.R1, 0)}
	for off := int16(-size); off < 0; off += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, off, asm.R1, asm.DWord))
	}
	if stamped {
		insns = append(insns,
			asm.FnKtimeGetNs.Call(),
			asm.StoreMem(asm.RFP, -size, asm.R0, asm.DWord),
			asm.StoreImm(asm.RFP, -8, 0x5a5a5a5a, asm.Word),
		)
	}
	insns = append(insns,
		asm.StoreImm(asm.RFP, -size+24, 8, asm.Word), // cap_len
		asm.LoadMapPtr(asm.R1, ring.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -int32(size)),
		asm.Mov.Imm(asm.R3, int32(size)),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SocketFilter, License: "GPL", Instructions: insns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}
