package filter

import (
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf/asm"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// fuzzReader hands out the bytes of a fuzz input, then zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fuzzReader) u32() uint32 {
	var v uint32
	for i := 0; i < 4; i++ {
		v = v<<8 | uint32(r.byte())
	}
	return v
}

// offset returns a packet offset: mostly small, sometimes past any packet.
func (r *fuzzReader) offset() uint32 {
	switch r.byte() % 8 {
	case 0:
		return r.u32()
	case 1:
		return uint32(r.byte())<<8 | uint32(r.byte())
	}
	return uint32(r.byte() % 96)
}

// fuzzProgram builds a valid cBPF program (forward jumps inside the
// program, a return at the end, no division by the constant 0) from
// fuzz bytes. It reports whether libpcap's bpf_filter can be a reference:
// not when a constant shift is 32 or more (undefined in C).
func fuzzProgram(code []byte) ([]bpf.Instruction, bool) {
	r := &fuzzReader{b: code}
	n := 1 + int(r.byte()%40)
	prog := make([]bpf.Instruction, 0, n+1)
	pcapSafe := true
	reg := func() bpf.Register { return bpf.Register(r.byte() % 2) }
	sizes := []int{1, 2, 4}
	aluOps := []bpf.ALUOp{bpf.ALUOpAdd, bpf.ALUOpSub, bpf.ALUOpMul, bpf.ALUOpDiv, bpf.ALUOpOr, bpf.ALUOpAnd,
		bpf.ALUOpShiftLeft, bpf.ALUOpShiftRight, bpf.ALUOpMod, bpf.ALUOpXor}
	conds := []bpf.JumpTest{bpf.JumpEqual, bpf.JumpNotEqual, bpf.JumpGreaterThan, bpf.JumpLessThan,
		bpf.JumpGreaterOrEqual, bpf.JumpLessOrEqual, bpf.JumpBitsSet, bpf.JumpBitsNotSet}
	for i := 0; i < n; i++ {
		// Jumps may land anywhere up to the final return at index n.
		skip := func() uint8 { return uint8(int(r.byte()) % (n - i)) }
		switch r.byte() % 18 {
		case 0, 1:
			prog = append(prog, bpf.LoadAbsolute{Off: r.offset(), Size: sizes[r.byte()%3]})
		case 2:
			prog = append(prog, bpf.LoadIndirect{Off: r.offset(), Size: sizes[r.byte()%3]})
		case 3:
			prog = append(prog, bpf.LoadMemShift{Off: r.offset()})
		case 4:
			v := uint32(r.byte())
			if r.byte()%2 == 0 {
				v = r.u32()
			}
			prog = append(prog, bpf.LoadConstant{Dst: reg(), Val: v})
		case 5:
			prog = append(prog, bpf.LoadScratch{Dst: reg(), N: int(r.byte() % 4)})
		case 6:
			prog = append(prog, bpf.StoreScratch{Src: reg(), N: int(r.byte() % 4)})
		case 7:
			prog = append(prog, bpf.LoadExtension{Num: bpf.ExtLen})
		case 8, 9:
			op := aluOps[r.byte()%byte(len(aluOps))]
			v := uint32(r.byte() % 40)
			if r.byte()%4 == 0 {
				v = r.u32()
			}
			switch op {
			case bpf.ALUOpDiv, bpf.ALUOpMod:
				if v == 0 {
					v = 3
				}
			case bpf.ALUOpShiftLeft, bpf.ALUOpShiftRight:
				if v >= 32 {
					pcapSafe = false
				}
			}
			prog = append(prog, bpf.ALUOpConstant{Op: op, Val: v})
		case 10:
			prog = append(prog, bpf.ALUOpX{Op: aluOps[r.byte()%byte(len(aluOps))]})
		case 11:
			prog = append(prog, bpf.NegateA{})
		case 12:
			if r.byte()%2 == 0 {
				prog = append(prog, bpf.TAX{})
			} else {
				prog = append(prog, bpf.TXA{})
			}
		case 13, 14:
			v := uint32(r.byte())
			if r.byte()%3 == 0 {
				v = r.u32()
			}
			prog = append(prog, bpf.JumpIf{Cond: conds[r.byte()%8], Val: v, SkipTrue: skip(), SkipFalse: skip()})
		case 15:
			prog = append(prog, bpf.JumpIfX{Cond: conds[r.byte()%8], SkipTrue: skip(), SkipFalse: skip()})
		case 16:
			prog = append(prog, bpf.Jump{Skip: uint32(skip())})
		case 17:
			if r.byte()%2 == 0 {
				prog = append(prog, bpf.RetA{})
			} else {
				prog = append(prog, bpf.RetConstant{Val: r.u32()})
			}
		}
	}
	if r.byte()%2 == 0 {
		prog = append(prog, bpf.RetA{})
	} else {
		prog = append(prog, bpf.RetConstant{Val: 0xffff})
	}
	return prog, pcapSafe
}

// loadThrottle keeps program loads to at most one per 5 ms: bursts of
// program loads and frees have deadlocked this kernel's JIT allocator.
type loadThrottle struct{ last time.Time }

func (l *loadThrottle) wait() {
	if d := 5*time.Millisecond - time.Since(l.last); d > 0 {
		time.Sleep(d)
	}
	l.last = time.Now()
}

// FuzzTranslate translates random valid cBPF programs for both back
// ends (and Direct inlined at the call site), runs them in the kernel with
// BPF_PROG_TEST_RUN on the packet, its first half, and its first half
// with a longer wire length, and compares the return value with
// x/net/bpf's VM, with Matcher, and (verdict only) with libpcap's
// bpf_filter. Run it only with -parallel 1 (make fuzz-filter): loads are
// throttled to one per 5 ms.
func FuzzTranslate(f *testing.F) {
	testutils.RunsInGuests(f)
	testutils.RequireRoot(f)
	tb, err := NewTestBed()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tb.Close() })
	var throttle loadThrottle

	// Seeds: pseudo-random programs over corpus packets, so that plain
	// `go test` covers every instruction kind.
	eth := ethernetCorpus(48)
	seeds := newPacketGen(4)
	for i := range eth {
		f.Add(seeds.bytes(160), eth[i].data)
	}

	f.Fuzz(func(t *testing.T, code, pkt []byte) {
		if len(pkt) > 1500 {
			pkt = pkt[:1500]
		}
		prog, pcapSafe := fuzzProgram(code)
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatalf("generated an invalid program: %v\n%v", err, prog)
		}
		m, err := NewMatcher(prog)
		if err != nil {
			t.Fatalf("matcher: %v\n%v", err, prog)
		}
		var ref *pcap.BPF
		if pcapSafe {
			raw, _ := assemble(prog)
			ins := make([]pcap.BPFInstruction, len(raw))
			for i, ri := range raw {
				ins[i] = pcap.BPFInstruction{Code: ri.Op, Jt: ri.Jt, Jf: ri.Jf, K: ri.K}
			}
			if ref, err = (&pcap.Handle{}).NewBPFInstructionFilter(ins); err != nil {
				t.Fatal(err)
			}
		}
		short := pkt[:len(pkt)/2]
		if _, err := Translate(prog, Options{}); errors.Is(err, ErrUnsupported) {
			return // M[] read that is not written on every path
		}
		// Both back ends spliced into the stub, and Direct inlined at
		// the call site of the XDP test program.
		for _, variant := range []struct {
			be     Backend
			inline bool
		}{{Direct, false}, {Scratch, false}, {Direct, true}} {
			be, name := variant.be, variant.be.String()
			if variant.inline {
				name += " inline"
			}
			var kf *KernelFilter
			var insns asm.Instructions
			throttle.wait()
			if variant.inline {
				kf, _ = tb.loadInline(t, "filtertest_direct", prog, be)
			} else {
				insns, err = Translate(prog, Options{Backend: be, ScratchSize: TestScratchSize})
				if err != nil {
					t.Fatalf("%s: %v\n%v", be, err, prog)
				}
				kf, err = tb.LoadTranslated(insns, be)
				if err != nil {
					t.Fatalf("%s: %v\ncBPF: %v\neBPF:\n%v", be, err, prog, insns)
				}
			}
			defer kf.Close()
			for _, in := range []struct {
				data []byte
				wire int
			}{{pkt, len(pkt)}, {short, len(short)}, {short, len(pkt) + 7}} {
				got, err := kf.Run(in.data, in.wire)
				if err != nil {
					t.Fatal(err)
				}
				if got == Undecided {
					got = m.Run(in.data, in.wire) // what Runner does
				}
				if want := m.Run(in.data, in.wire); got != want {
					t.Fatalf("%s: kernel %d, matcher %d (wire %d)\ncBPF: %v\neBPF:\n%v\npacket %x", name, got, want, in.wire, prog, insns, in.data)
				}
				if in.wire == len(in.data) {
					if want, err := vm.Run(in.data); err == nil && uint32(want) != got {
						t.Fatalf("%s: kernel %d, x/net/bpf VM %d\ncBPF: %v\neBPF:\n%v\npacket %x", name, got, want, prog, insns, in.data)
					}
				}
				if ref != nil {
					ci := gopacket.CaptureInfo{CaptureLength: len(in.data), Length: in.wire}
					if want := ref.Matches(ci, in.data); want != (got != 0) {
						t.Fatalf("%s: kernel %d, libpcap match %v\ncBPF: %v\neBPF:\n%v\npacket %x", name, got, want, prog, insns, in.data)
					}
				}
			}
		}
	})
}
