package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Compile compiles a tcpdump filter expression into classic BPF for packets
// of link type lt, captured with at most snaplen bytes, exactly as
// `tcpdump -r` would: libpcap's pcap_compile with optimisation, on a
// pcap_open_dead handle (never a live handle, whose programs may use
// ancillary loads), with netmask 0 (so `ip broadcast` matches only
// 255.255.255.255 and 0.0.0.0). An empty expression matches every packet.
// CompileNetmask takes a netmask.
//
// An invalid expression returns an error carrying libpcap's own message.
// Instructions x/net/bpf cannot round-trip are returned as
// bpf.RawInstruction, so nothing is lost.
func Compile(expr string, lt LinkType, snaplen int) ([]bpf.Instruction, error) {
	return CompileNetmask(expr, lt, snaplen, 0)
}

// CompileNetmask is Compile with the IPv4 netmask, in host byte order
// (255.255.255.0 is 0xffffff00), that `ip broadcast` uses: a live tcpdump
// takes the capture device's (DeviceNetmask).
func CompileNetmask(expr string, lt LinkType, snaplen int, netmask uint32) ([]bpf.Instruction, error) {
	if snaplen <= 0 {
		return nil, fmt.Errorf("compile filter %q: snaplen %d is not positive", expr, snaplen)
	}
	raw, err := compileRaw(expr, lt, snaplen, netmask)
	if err != nil {
		return nil, fmt.Errorf("filter %q for proto %s: %w", expr, lt, err)
	}
	return disassembleAll(raw), nil
}

// CompileFile compiles expr exactly as `tcpdump -r` does for a capture
// file of link type lt and snap length snaplen, written in the other byte
// order than this host's if swapped: on a libpcap savefile handle, which
// compiles some link types differently from a dead or live one (DLT_NULL
// and DLT_LOOP test the address family in the file's byte order and
// accept every BSD's AF_INET6). netmask is as for CompileNetmask
// (tcpdump -r: 0).
func CompileFile(expr string, lt LinkType, snaplen int, swapped bool, netmask uint32) ([]bpf.Instruction, error) {
	if snaplen <= 0 {
		return nil, fmt.Errorf("compile filter %q: snaplen %d is not positive", expr, snaplen)
	}
	raw, err := compileOfflineRaw(expr, lt, snaplen, swapped, netmask)
	if err != nil {
		return nil, fmt.Errorf("filter %q for proto %s: %w", expr, lt, err)
	}
	return disassembleAll(raw), nil
}

// disassembleAll returns the typed form of every instruction of raw.
func disassembleAll(raw []bpf.RawInstruction) []bpf.Instruction {
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = disassemble(r)
	}
	return prog
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
