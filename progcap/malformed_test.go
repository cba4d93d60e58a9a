package progcap_test

import (
	"context"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/progcap"
)

// TestMalformedRecordsCounted: records bpfcap cannot read (bad magic, bad
// version, a captured length beyond the record) are skipped and every one
// of them is counted (Stats Skipped), none written.
func TestMalformedRecordsCounted(t *testing.T) {
	testutils.RequireRoot(t)
	events, err := ebpf.NewMap(&ebpf.MapSpec{Name: progcap.EventsMapName, Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	config, err := ebpf.NewMap(&ebpf.MapSpec{Name: "databpfcap", Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 1, Flags: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer config.Close()

	// emitter writes one 32-byte record header with these fields to the
	// ring (and uses the config map, as bpf/bpfcap.h programs do).
	emitter := func(magic int32, version, caplen int32) *ebpf.Program {
		insns := asm.Instructions{
			asm.LoadMapPtr(asm.R1, config.FD()),
			asm.Mov.Imm(asm.R0, 0),
			asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord),
			asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
			asm.StoreMem(asm.RFP, -24, asm.R0, asm.Word),
			asm.Mov.Imm32(asm.R0, magic),
			asm.StoreMem(asm.RFP, -32, asm.R0, asm.Word),
			asm.Mov.Imm32(asm.R0, version|1<<16), // version, link type 1
			asm.StoreMem(asm.RFP, -28, asm.R0, asm.Word),
			asm.Mov.Imm32(asm.R0, caplen),
			asm.StoreMem(asm.RFP, -20, asm.R0, asm.Word),
			asm.LoadMapPtr(asm.R1, events.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -32),
			asm.Mov.Imm(asm.R3, 32),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnRingbufOutput.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "bpfcap_bad", Type: ebpf.SocketFilter, License: "GPL", Instructions: insns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	badMagic := emitter(0x11223344, progcap.RecordVersion, 0)
	badVersion := emitter(progcap.RecordMagic, 99, 0)
	badLength := emitter(progcap.RecordMagic, progcap.RecordVersion, 100)

	c, err := progcap.OpenProgram(badMagic, progcap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	coll := &testutils.PacketCollector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, coll) }()

	const each = 9
	pkt := make([]byte, 64)
	for _, p := range []*ebpf.Program{badMagic, badVersion, badLength} {
		if _, err := p.Run(&ebpf.RunOptions{Data: pkt, Repeat: each}); err != nil {
			t.Fatal(err)
		}
	}
	testutils.WaitFor(t, "every record read", 10*time.Second, func() bool {
		st := c.Stats()
		return len(st) > 0 && st[0].Skipped >= 3*each
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st[0].Skipped != 3*each || st[0].Captured != 0 || coll.Len() != 0 {
		t.Fatalf("skipped %d, captured %d, written %d; want %d skipped, none written", st[0].Skipped, st[0].Captured, coll.Len(), 3*each)
	}
}
