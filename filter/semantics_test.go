package filter

import (
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestFilterSemantics runs hand-written cBPF corner cases in the kernel
// (both back ends) and compares them with Matcher and libpcap's
// bpf_filter on the same raw instructions.
func TestFilterSemantics(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	tb, err := NewTestBed()
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	ld := func(off uint32, size int) bpf.Instruction { return bpf.LoadAbsolute{Off: off, Size: size} }
	ldx := func(v uint32) bpf.Instruction { return bpf.LoadConstant{Dst: bpf.RegX, Val: v} }
	lda := func(v uint32) bpf.Instruction { return bpf.LoadConstant{Dst: bpf.RegA, Val: v} }
	pkt := make([]byte, 64)
	for i := range pkt {
		pkt[i] = byte(0x80 + i)
	}
	for _, tc := range []struct {
		name string
		prog []bpf.Instruction
		want uint32 // on pkt with wire length 100
	}{
		{"shift left by X = 40 gives 0", []bpf.Instruction{lda(1), ldx(40), bpf.ALUOpX{Op: bpf.ALUOpShiftLeft}, bpf.RetA{}}, 0},
		{"shift right by X = 32 gives 0", []bpf.Instruction{lda(0xffffffff), ldx(32), bpf.ALUOpX{Op: bpf.ALUOpShiftRight}, bpf.RetA{}}, 0},
		{"shift left by X = 31", []bpf.Instruction{lda(1), ldx(31), bpf.ALUOpX{Op: bpf.ALUOpShiftLeft}, bpf.RetA{}}, 0x80000000},
		{"divide by X = 0 returns 0", []bpf.Instruction{lda(7), ldx(0), bpf.ALUOpX{Op: bpf.ALUOpDiv}, bpf.RetConstant{Val: 1}}, 0},
		{"modulo by X = 0 returns 0", []bpf.Instruction{lda(7), ldx(0), bpf.ALUOpX{Op: bpf.ALUOpMod}, bpf.RetConstant{Val: 1}}, 0},
		{"modulo by loaded X", []bpf.Instruction{ld(0, 1), bpf.TAX{}, lda(0x109), bpf.ALUOpX{Op: bpf.ALUOpMod}, bpf.RetA{}}, 0x109 % 0x80},
		{"divide by loaded X", []bpf.Instruction{ld(1, 1), bpf.TAX{}, lda(0xfffffff0), bpf.ALUOpX{Op: bpf.ALUOpDiv}, bpf.RetA{}}, 0xfffffff0 / 0x81},
		{"unsigned divide by constant with bit 31", []bpf.Instruction{lda(0xfffffff0), bpf.ALUOpConstant{Op: bpf.ALUOpDiv, Val: 0x80000000}, bpf.RetA{}}, 1},
		{"jgt with bit 31 immediate", []bpf.Instruction{ld(0, 4), bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 0x80000000, SkipFalse: 1}, bpf.RetConstant{Val: 2}, bpf.RetConstant{Val: 3}}, 2},
		{"jeq with bit 31 immediate", []bpf.Instruction{ld(0, 4), bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x80818283, SkipFalse: 1}, bpf.RetConstant{Val: 2}, bpf.RetConstant{Val: 3}}, 2},
		{"jset with bit 31", []bpf.Instruction{ld(0, 4), bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x80000000, SkipFalse: 1}, bpf.RetConstant{Val: 2}, bpf.RetConstant{Val: 3}}, 2},
		{"jge X", []bpf.Instruction{ld(0, 1), ldx(0x80), bpf.JumpIfX{Cond: bpf.JumpGreaterOrEqual, SkipFalse: 1}, bpf.RetConstant{Val: 2}, bpf.RetConstant{Val: 3}}, 2},
		{"identity operations", []bpf.Instruction{ld(0, 4), bpf.ALUOpConstant{Op: bpf.ALUOpAdd}, bpf.ALUOpConstant{Op: bpf.ALUOpSub},
			bpf.ALUOpConstant{Op: bpf.ALUOpOr}, bpf.ALUOpConstant{Op: bpf.ALUOpXor}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft},
			bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight}, bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 1}, bpf.ALUOpConstant{Op: bpf.ALUOpDiv, Val: 1},
			bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xffffffff}, bpf.RetA{}}, 0x80818283},
		{"negate", []bpf.Instruction{lda(5), bpf.NegateA{}, bpf.RetA{}}, 0xfffffffb},
		{"len is the wire length", []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtLen}, bpf.RetA{}}, 100},
		{"ldx len", []bpf.Instruction{bpf.RawInstruction{Op: clsLDX | sizeW | modeLEN}, bpf.TXA{}, bpf.RetA{}}, 100},
		{"load past the capture returns 0", []bpf.Instruction{ld(62, 4), bpf.RetConstant{Val: 1}}, 0},
		{"last word", []bpf.Instruction{ld(60, 4), bpf.RetA{}}, 0xbcbdbebf},
		{"load at a huge offset returns 0", []bpf.Instruction{ld(0x7fffffff, 1), bpf.RetConstant{Val: 1}}, 0},
		{"indirect load past the end", []bpf.Instruction{ldx(60), bpf.LoadIndirect{Off: 2, Size: 4}, bpf.RetConstant{Val: 1}}, 0},
		{"indirect load with X near 2^32", []bpf.Instruction{ldx(0xffffffff), bpf.LoadIndirect{Off: 2, Size: 1}, bpf.RetConstant{Val: 1}}, 0},
		{"indirect load", []bpf.Instruction{ldx(10), bpf.LoadIndirect{Off: 2, Size: 2}, bpf.RetA{}}, 0x8c8d},
		{"ldx msh", []bpf.Instruction{bpf.LoadMemShift{Off: 3}, bpf.TXA{}, bpf.RetA{}}, 4 * 3},
		{"unread A and X are 0", []bpf.Instruction{bpf.ALUOpX{Op: bpf.ALUOpAdd}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1}, bpf.RetA{}}, 1},
		{"scratch memory", []bpf.Instruction{lda(11), bpf.StoreScratch{Src: bpf.RegA, N: 15}, ldx(4), bpf.StoreScratch{Src: bpf.RegX, N: 0},
			bpf.LoadScratch{Dst: bpf.RegA, N: 0}, bpf.LoadScratch{Dst: bpf.RegX, N: 15}, bpf.ALUOpX{Op: bpf.ALUOpMul}, bpf.RetA{}}, 44},
		{"jt == 0 branches", []bpf.Instruction{ld(0, 1), bpf.RawInstruction{Op: clsJMP | jmpJEQ, Jt: 0, Jf: 1, K: 0x80}, bpf.RetConstant{Val: 5}, bpf.RetConstant{Val: 6}}, 5},
		{"jset with jt == 0", []bpf.Instruction{ld(0, 1), bpf.RawInstruction{Op: clsJMP | jmpJSET, Jt: 0, Jf: 1, K: 1}, bpf.RetConstant{Val: 5}, bpf.RetConstant{Val: 6}}, 6},
		{"backward jump loop", []bpf.Instruction{
			// X counts 4 iterations of a loop via M[0], then returns X.
			ldx(0), bpf.StoreScratch{Src: bpf.RegX, N: 0},
			bpf.LoadScratch{Dst: bpf.RegA, N: 0}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1}, bpf.StoreScratch{Src: bpf.RegA, N: 0},
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 4, SkipTrue: 1},
			bpf.Jump{Skip: 0xfffffffb}, // back to the load of M[0]
			bpf.RetA{}}, 4},
		{"backward jump loop past the bound is undecided in the kernel", []bpf.Instruction{
			ldx(0), bpf.StoreScratch{Src: bpf.RegX, N: 0},
			bpf.LoadScratch{Dst: bpf.RegA, N: 0}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1}, bpf.StoreScratch{Src: bpf.RegA, N: 0},
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: MaxBackwardJumps + 2, SkipTrue: 1},
			bpf.Jump{Skip: 0xfffffffb},
			bpf.RetA{}}, MaxBackwardJumps + 2},
		{"scratch cell read before any write reads 0", []bpf.Instruction{
			ld(0, 1), bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x80, SkipFalse: 2},
			lda(7), bpf.StoreScratch{Src: bpf.RegA, N: 3},
			bpf.LoadScratch{Dst: bpf.RegA, N: 3}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 5}, bpf.RetA{}}, 12},
		{"scratch cell never written reads 0", []bpf.Instruction{
			bpf.LoadScratch{Dst: bpf.RegX, N: 9}, bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 3}, bpf.RetA{}}, 3},
	} {
		m, err := NewMatcher(tc.prog)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := m.Run(pkt, 100); got != tc.want {
			t.Errorf("%s: matcher %#x, want %#x", tc.name, got, tc.want)
		}
		raw, _ := assemble(tc.prog)
		ins := make([]pcap.BPFInstruction, len(raw))
		for i, ri := range raw {
			ins[i] = pcap.BPFInstruction{Code: ri.Op, Jt: ri.Jt, Jf: ri.Jf, K: ri.K}
		}
		ref, err := (&pcap.Handle{}).NewBPFInstructionFilter(ins)
		if err != nil {
			t.Fatal(err)
		}
		if got := ref.Matches(gopacket.CaptureInfo{CaptureLength: len(pkt), Length: 100}, pkt); got != (tc.want != 0) {
			t.Errorf("%s: libpcap match %v, want %#x", tc.name, got, tc.want)
		}
		kernelWant := tc.want
		if strings.Contains(tc.name, "undecided") {
			kernelWant = Undecided
		}
		for _, be := range []Backend{Direct, Scratch} {
			kf, err := tb.Load(tc.prog, be)
			if err != nil {
				t.Errorf("%s (%s): %v", tc.name, be, err)
				continue
			}
			if got, err := kf.Run(pkt, 100); err != nil || got != kernelWant {
				t.Errorf("%s (%s): kernel %#x, %v; want %#x", tc.name, be, got, err, kernelWant)
			}
			kf.Close()
		}
	}
}
