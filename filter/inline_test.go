package filter

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// loadInline translates prog with Options.Inline, splices it at the
// stub's call sites of the test program name and loads it.
func (tb *TestBed) loadInline(t *testing.T, name string, prog []bpf.Instruction, be Backend) (*KernelFilter, int) {
	t.Helper()
	ps := tb.spec.Programs[name].Copy()
	off, err := InlineStackOffset(ps, be.Stub())
	if err != nil {
		t.Fatal(err)
	}
	insns, err := Translate(prog, Options{Backend: be, ScratchSize: TestScratchSize, Inline: true, StackOffset: off})
	if err != nil {
		t.Fatal(err)
	}
	if err := SpliceInline(ps, be.Stub(), insns); err != nil {
		t.Fatal(err)
	}
	if be == Scratch {
		if err := ps.Instructions.AssociateMap("filtertest_scratch", tb.scratch); err != nil {
			t.Fatal(err)
		}
	}
	p, err := ebpf.NewProgram(ps)
	if err != nil {
		t.Fatalf("%s with inline %s filter (stack offset %d): %v", name, be, off, err)
	}
	kf := &KernelFilter{backend: be, prog: p, Instructions: len(insns)}
	if info, err := p.Info(); err == nil {
		if n, ok := info.VerifiedInstructions(); ok {
			kf.VerifiedInstructions = int(n)
		}
		if fi, err := info.FuncInfos(); err == nil && len(fi) != 1 {
			t.Errorf("%s: %d functions after inlining, want 1", name, len(fi))
		}
	}
	return kf, int(off)
}

// TestFilterInline splices Inline translations at the stub call sites of
// the three test programs (XDP direct, whose bounds check jumps across
// the call; tc direct; XDP scratch, whose frame holds a map key) and
// compares them with Matcher over part of the corpus.
func TestFilterInline(t *testing.T) {
	testutils.RequireRoot(t)
	tb, err := NewTestBed()
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	pkts := ethernetCorpus(400)
	if os.Getenv("BPFCAP_VMTEST") != "" {
		pkts = pkts[:100] // qemu TCG guest: every filter still loads
	}
	var maxVerified int
	for _, tc := range []struct {
		prog string
		be   Backend
	}{{"filtertest_direct", Direct}, {"filtertest_tc", Direct}, {"filtertest_scratch_prog", Scratch}} {
		n := 0
		for _, expr := range handFilters {
			prog, err := Compile(expr, LinkEthernet, testSnaplen)
			if err != nil {
				continue
			}
			m, err := NewMatcher(prog)
			if err != nil {
				t.Fatal(err)
			}
			kf, off := tb.loadInline(t, tc.prog, prog, tc.be)
			maxVerified = max(maxVerified, kf.VerifiedInstructions)
			for i, p := range pkts {
				got, err := kf.Run(p.data, p.wireLen)
				if err != nil {
					t.Fatal(err)
				}
				if got == Undecided {
					got = m.Run(p.data, p.wireLen) // what Runner does
				}
				if want := m.Run(p.data, p.wireLen); got != want {
					t.Errorf("%s, %q inline (stack %d), packet %d: kernel %d, matcher %d", tc.prog, expr, off, i, got, want)
					break
				}
			}
			kf.Close()
			n++
		}
		t.Logf("%s: %d filters inline, %d packets each", tc.prog, n, len(pkts))
	}
	t.Logf("most verifier-processed instructions: %d", maxVerified)
}

func TestFilterInlineRefuses(t *testing.T) {
	spec, err := loadFiltertest()
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := Compile("tcp", LinkEthernet, 262144)
	stub, err := Translate(prog, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps := spec.Programs["filtertest_direct"].Copy()
	if err := SpliceInline(ps, StubDirect, stub); err == nil {
		t.Error("SpliceInline accepted a stub-body translation (it exits)")
	}
	if err := SpliceInline(ps, StubScratch, asm.Instructions{asm.Mov.Imm(asm.R0, 1)}); err == nil {
		t.Error("SpliceInline into a stub the program does not call succeeded")
	}
	if err := SpliceInline(ps, StubDirect, asm.Instructions{asm.Mov.Imm(asm.R6, 1)}); err == nil {
		t.Error("SpliceInline of a fragment writing R6 succeeded")
	}
	if _, err := Translate(prog, Options{Inline: true, StackOffset: -8}); err == nil {
		t.Error("Translate with a stack offset inside the 64 bytes below R10 succeeded")
	}
	// The scratch program keeps a map key at R10-4 and spills at R10-16:
	// M[] goes below them.
	off, err := InlineStackOffset(spec.Programs["filtertest_scratch_prog"], StubScratch)
	if err != nil || off > -16-64 {
		t.Errorf("InlineStackOffset(scratch program) = %d, %v", off, err)
	}
}
