package filter

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// The stub subprograms capture programs call, declared in bpf/capture.h
// with bodies clang cannot see through.
const (
	// StubDirect is `__u32 bpfcap_filter_direct(void *data, void
	// *data_end, __u32 wire_len)`: splice a Direct translation into it.
	StubDirect = "bpfcap_filter_direct"
	// StubScratch is `__u32 bpfcap_filter_scratch(const void *buf, __u32
	// cap_len, __u32 wire_len)`: splice a Scratch translation into it.
	StubScratch = "bpfcap_filter_scratch"
)

// Stub returns the stub symbol a back end's translation belongs in.
func (b Backend) Stub() string {
	if b == Scratch {
		return StubScratch
	}
	return StubDirect
}

// Splice replaces the body of the static __noinline subprogram stub in
// spec with insns (a Translate result). The first new instruction takes
// over the stub's metadata: its symbol, so calls still resolve, and its
// BTF func info and line info, which the kernel requires for every
// subprogram when the program carries BTF. spec.Instructions is replaced
// by a new slice; other specs that share the old one are not changed.
//
// It fails when spec has no instruction with that symbol (the program
// never calls the stub, or the object was built without it), when the
// symbol starts the program itself, or when insns contain symbols or
// references of their own.
func Splice(spec *ebpf.ProgramSpec, stub string, insns asm.Instructions) error {
	if spec == nil {
		return errors.New("splice filter: nil program spec")
	}
	if len(insns) == 0 {
		return fmt.Errorf("splice filter into %s of program %s: no instructions", stub, spec.Name)
	}
	start := -1
	for i := range spec.Instructions {
		if spec.Instructions[i].Symbol() == stub {
			start = i
			break
		}
	}
	switch {
	case start < 0:
		return fmt.Errorf("splice filter into program %s: no subprogram %s (the program must call the stub, declared static __noinline)", spec.Name, stub)
	case start == 0:
		return fmt.Errorf("splice filter into program %s: %s is the program's entry, not a subprogram", spec.Name, stub)
	}
	end := len(spec.Instructions)
	for i := start + 1; i < len(spec.Instructions); i++ {
		if spec.Instructions[i].Symbol() != "" || btf.FuncMetadata(&spec.Instructions[i]) != nil {
			end = i
			break
		}
	}
	for i := range insns {
		if insns[i].Symbol() != "" || insns[i].Reference() != "" {
			return fmt.Errorf("splice filter into %s of program %s: instruction %d carries symbol %q / reference %q", stub, spec.Name, i, insns[i].Symbol(), insns[i].Reference())
		}
		if insns[i].OpCode.JumpOp() == asm.Call {
			return fmt.Errorf("splice filter into %s of program %s: instruction %d is a call", stub, spec.Name, i)
		}
	}

	out := make(asm.Instructions, 0, len(spec.Instructions)-(end-start)+len(insns))
	out = append(out, spec.Instructions[:start]...)
	body := make(asm.Instructions, len(insns))
	copy(body, insns)
	orig := &spec.Instructions[start]
	first := body[0].WithMetadata(asm.Metadata{}).WithSymbol(stub)
	if fn := btf.FuncMetadata(orig); fn != nil {
		first = btf.WithFuncMetadata(first, fn)
	}
	if src := orig.Source(); src != nil {
		first = first.WithSource(src)
	}
	body[0] = first
	out = append(out, body...)
	out = append(out, spec.Instructions[end:]...)
	spec.Instructions = out
	return nil
}
