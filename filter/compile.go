package filter

import (
	"fmt"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// Compile compiles a tcpdump filter expression into classic BPF for packets
// of link type lt, captured with at most snaplen bytes, exactly as
// tcpdump would (libpcap's pcap_compile with optimisation, on a
// pcap_open_dead handle; never a live handle, whose programs may use
// ancillary loads). An empty expression matches every packet.
//
// An invalid expression returns an error carrying libpcap's own message.
// Instructions x/net/bpf cannot round-trip are returned as
// bpf.RawInstruction, so nothing is lost.
func Compile(expr string, lt LinkType, snaplen int) ([]bpf.Instruction, error) {
	if snaplen <= 0 {
		return nil, fmt.Errorf("compile filter %q: snaplen %d is not positive", expr, snaplen)
	}
	raw, err := pcap.CompileBPFFilter(layers.LinkType(lt), snaplen, expr)
	if err != nil {
		return nil, fmt.Errorf("filter %q for proto %s: %w", expr, lt, err)
	}
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = disassemble(bpf.RawInstruction{Op: r.Code, Jt: r.Jt, Jf: r.Jf, K: r.K})
	}
	return prog, nil
}

// disassemble returns the typed form of ri when it assembles back to the
// same raw instruction, else ri itself (x/net/bpf folds `ldx len` into
// `ld len`, for example).
func disassemble(ri bpf.RawInstruction) bpf.Instruction {
	ins := ri.Disassemble()
	back, err := ins.Assemble()
	if err != nil || back != ri {
		return ri
	}
	return ins
}

// assemble returns the raw form of every instruction in prog.
func assemble(prog []bpf.Instruction) ([]bpf.RawInstruction, error) {
	raw := make([]bpf.RawInstruction, len(prog))
	for i, ins := range prog {
		r, err := ins.Assemble()
		if err != nil {
			return nil, fmt.Errorf("assemble cBPF instruction %d (%v): %w", i, ins, err)
		}
		raw[i] = r
	}
	return raw, nil
}
