package filter

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

func TestFilterSplice(t *testing.T) {
	testutils.RunsInGuests(t)
	spec, err := loadFiltertest()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile("udp port 53", LinkEthernet, 262144)
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range []Backend{Direct, Scratch} {
		name := map[Backend]string{Direct: "filtertest_direct", Scratch: "filtertest_scratch_prog"}[be]
		ps := spec.Programs[name].Copy()
		orig := ps.Instructions
		start, end := -1, len(orig)
		for i := range orig {
			if orig[i].Symbol() == be.Stub() {
				start = i
			} else if start >= 0 && orig[i].Symbol() != "" {
				end = i
				break
			}
		}
		if start < 0 {
			t.Fatalf("%s: no stub %s", name, be.Stub())
		}
		fn := btf.FuncMetadata(&orig[start])
		if fn == nil || fn.Name != be.Stub() {
			t.Fatalf("%s: stub has no BTF func info: %v", name, fn)
		}
		src := orig[start].Source()
		insns, err := Translate(prog, Options{Backend: be, ScratchSize: TestScratchSize})
		if err != nil {
			t.Fatal(err)
		}
		if err := Splice(ps, be.Stub(), insns); err != nil {
			t.Fatal(err)
		}
		got := ps.Instructions
		if want := len(orig) - (end - start) + len(insns); len(got) != want {
			t.Errorf("%s: %d instructions after splicing, want %d", name, len(got), want)
		}
		first := &got[start]
		if first.Symbol() != be.Stub() {
			t.Errorf("%s: spliced body starts with symbol %q", name, first.Symbol())
		}
		if f := btf.FuncMetadata(first); f != fn {
			t.Errorf("%s: func info %v, want the stub's %v", name, f, fn)
		}
		if first.Source() != src {
			t.Errorf("%s: line info %v, want the stub's %v", name, first.Source(), src)
		}
		if first.OpCode != insns[0].OpCode || first.Constant != insns[0].Constant {
			t.Errorf("%s: first instruction %v, want %v", name, first, insns[0])
		}
		for i := 1; i < len(insns); i++ {
			if got[start+i].OpCode != insns[i].OpCode || got[start+i].Offset != insns[i].Offset {
				t.Fatalf("%s: instruction %d is %v, want %v", name, i, got[start+i], insns[i])
			}
		}
		// The original spec is unchanged.
		if len(spec.Programs[name].Instructions) != len(orig) {
			t.Errorf("%s: Splice changed the spec it was copied from", name)
		}
	}

	ps := spec.Programs["filtertest_direct"].Copy()
	if err := Splice(ps, "no_such_stub", asm.Instructions{asm.Return()}); err == nil || !strings.Contains(err.Error(), "no_such_stub") {
		t.Errorf("Splice into a missing stub: %v", err)
	}
	if err := Splice(ps, "filtertest_direct", asm.Instructions{asm.Return()}); err == nil {
		t.Error("Splice over the program's entry succeeded")
	}
	if err := Splice(ps, StubDirect, asm.Instructions{asm.Return().WithSymbol("x")}); err == nil {
		t.Error("Splice of instructions with a symbol succeeded")
	}
	if err := Splice(ps, StubDirect, nil); err == nil {
		t.Error("Splice of no instructions succeeded")
	}
}

// TestFilterSpliceLoads checks that a spliced program passes the verifier
// with its BTF and that the kernel runs the filter, not the stub (the
// stub alone matches everything).
func TestFilterSpliceLoads(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	tb, err := NewTestBed()
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	prog, err := Compile("udp port 53", LinkEthernet, 262144)
	if err != nil {
		t.Fatal(err)
	}
	udp53 := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0x30, 0x39, 0, 53, 0, 8, 0, 0}
	tcp := append([]byte{}, udp53...)
	tcp[23] = 6
	for _, be := range []Backend{Direct, Scratch} {
		kf, err := tb.Load(prog, be)
		if err != nil {
			t.Fatal(err)
		}
		defer kf.Close()
		info, err := kf.prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := info.BTFID(); !ok {
			t.Errorf("%s: loaded program has no BTF", be)
		}
		if got, err := kf.Run(udp53, len(udp53)); err != nil || got != 262144 {
			t.Errorf("%s: udp port 53 packet: %d, %v", be, got, err)
		}
		if got, err := kf.Run(tcp, len(tcp)); err != nil || got != 0 {
			t.Errorf("%s: tcp packet: %d, %v", be, got, err)
		}
	}
}
