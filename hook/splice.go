package hook

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/pcapng"
)

// compileFilter compiles expr with libpcap for packets of link type lt,
// with compile (nil: filter.Compile).
func compileFilter(compile filter.CompileFunc, expr string, lt pcapng.LinkType, snaplen int) ([]bpf.Instruction, error) {
	flt, err := filter.LinkTypeFromFile(uint32(lt))
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", expr, err)
	}
	if compile == nil {
		compile = filter.Compile
	}
	return compile(expr, flt, snaplen)
}

// spliceFilter translates cbpf for opts.Backend and splices it into the
// backend's stub in ps, or with inline at every call of the stub
// (filter.SpliceInline, which also removes the stub). A filter that cannot
// be translated or inlined comes back as *errKernelFilter, so Load falls
// back to the stub splice or to filtering in userspace.
func spliceFilter(ps *ebpf.ProgramSpec, opts Options, cbpf []bpf.Instruction, inline bool) error {
	fo := filter.Options{Backend: filter.Direct}
	if opts.Backend == Scratch {
		fo = filter.Options{Backend: filter.Scratch, ScratchSize: MaxData}
	}
	stub := fo.Backend.Stub()
	if inline {
		off, err := filter.InlineStackOffset(ps, stub)
		if err != nil {
			return &errKernelFilter{reason: "the filter cannot be inlined", err: err}
		}
		fo.Inline, fo.StackOffset = true, off
	}
	insns, err := filter.Translate(cbpf, fo)
	if err != nil {
		reason := "the translator cannot express it"
		if !errors.Is(err, filter.ErrUnsupported) {
			reason = "the translator failed"
		}
		return &errKernelFilter{reason: reason, err: err}
	}
	if inline {
		if err := filter.SpliceInline(ps, stub, insns); err != nil {
			return &errKernelFilter{reason: "the filter cannot be inlined", err: err}
		}
		return nil
	}
	if err := filter.Splice(ps, stub, insns); err != nil {
		return fmt.Errorf("load capture program %s: %w", opts.Program, err)
	}
	return nil
}
