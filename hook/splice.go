package hook

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/pcapng"
)

// compileFilter compiles expr with libpcap for packets of link type lt (a
// LINKTYPE_ value) with netmask for `ip broadcast`, through compile (nil:
// filter.CompileNetmask in this process).
func compileFilter(compile filter.CompileFunc, expr string, lt pcapng.LinkType, snaplen int, netmask uint32) ([]bpf.Instruction, error) {
	if compile == nil {
		compile = filter.CompileNetmask
	}
	return compile(expr, filter.LinkTypeFromFile(uint32(lt)), snaplen, netmask)
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
