package filter

import "golang.org/x/net/bpf"

// CompileFunc is the signature of CompileNetmask, for callers that let someone
// else run it: libpcap's compiler is a C call that cannot be interrupted,
// so a command line tool may run it in a child process that a signal can
// end, and hand the result back through FromRaw.
type CompileFunc func(expr string, lt LinkType, snaplen int, netmask uint32) ([]bpf.Instruction, error)

// FromRaw returns raw as Compile returns it: typed instructions where they
// round-trip, bpf.RawInstruction otherwise.
func FromRaw(raw []bpf.RawInstruction) []bpf.Instruction {
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = disassemble(r)
	}
	return prog
}
