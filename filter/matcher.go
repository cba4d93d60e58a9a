package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Matcher runs a classic BPF program in userspace with libpcap's
// semantics (bpf_filter): loads read the captured bytes, `len` is the wire
// length, an out-of-bounds load or a division by zero returns 0, shifts by
// 32 or more give 0, and backward jumps (protochain) are followed. It is
// the filter fallback when the kernel refuses a translated filter.
//
// It follows backward jumps as libpcap does, up to MatcherMaxJumps(n) of
// them per run on an n-byte capture: each turn of libpcap's `protochain`
// loop steps over a header of at least 8 bytes, so no packet it can
// finish needs more. libpcap itself follows them without bound, and loops
// forever on some packets: its IPv4 `protochain` code sets X to the AH
// length instead of adding it, so a packet whose AH points back at itself
// never ends. Matcher returns 0 for those instead of hanging, after work
// proportional to the packet's length.
//
// A Matcher is safe for concurrent use.
type Matcher struct {
	prog []bpf.RawInstruction
}

// NewMatcher checks prog (valid opcodes, jumps inside the program, no
// falling off the end, no ancillary loads other than `len`) and returns a
// Matcher for it.
func NewMatcher(prog []bpf.Instruction) (*Matcher, error) {
	raw, err := assemble(prog)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 || len(raw) > maxInsns {
		return nil, fmt.Errorf("invalid cBPF program: %d instructions", len(raw))
	}
	for pc, ri := range raw {
		in, err := decode(pc, ri)
		if err != nil {
			return nil, err
		}
		switch in.op {
		case opRetK, opRetA:
		case opJa:
			if t := jumpTo(pc, in.k); t < 0 || t >= len(raw) {
				return nil, fmt.Errorf("invalid cBPF program: instruction %d jumps to %d, outside the program", pc, t)
			}
		case opJcond:
			if pc+1+int(max(in.jt, in.jf)) >= len(raw) {
				return nil, fmt.Errorf("invalid cBPF program: instruction %d jumps past the end", pc)
			}
		default:
			if pc+1 >= len(raw) {
				return nil, fmt.Errorf("invalid cBPF program: instruction %d falls off the end", pc)
			}
		}
	}
	return &Matcher{prog: raw}, nil
}

// Match reports whether the packet matches: data is the captured bytes,
// wireLen the packet's length on the wire (for `len`).
func (m *Matcher) Match(data []byte, wireLen int) bool {
	return m.Run(data, wireLen) != 0
}

// Run returns the program's return value for the packet (0: no match;
// otherwise the snap length the program asks for).
func (m *Matcher) Run(data []byte, wireLen int) uint32 {
	ret, _ := m.run(data, wireLen)
	return ret
}

// MatcherMaxJumps returns the most backward jumps Matcher follows in one
// run on a capture of n bytes: libpcap's `protochain` loop takes one per
// IPv6 extension or AH header, each at least 8 bytes long, so n/8 + 1
// suffice; this leaves twice that and some.
func MatcherMaxJumps(n int) int { return n/4 + 64 }

// run is Run that also reports whether the run stopped at the
// backward-jump bound (where libpcap would loop forever).
func (m *Matcher) run(data []byte, wireLen int) (ret uint32, bounded bool) {
	return m.runBounded(data, wireLen, MatcherMaxJumps(len(data)))
}

// runBounded is run with a given bound on backward jumps.
func (m *Matcher) runBounded(data []byte, wireLen int, bound int) (ret uint32, bounded bool) {
	var a, x uint32
	backward := 0
	var mem [memWords]uint32
	load := func(off uint64, n int) (uint32, bool) {
		if off+uint64(n) > uint64(len(data)) {
			return 0, false
		}
		var v uint32
		for i := 0; i < n; i++ {
			v = v<<8 | uint32(data[off+uint64(i)])
		}
		return v, true
	}
	pc := 0
	for {
		ri := m.prog[pc]
		k := ri.K
		pc++
		switch class(ri.Op) {
		case clsRET:
			if retSrc(ri.Op) == retA {
				return a, false
			}
			return k, false
		case clsLD, clsLDX:
			var v uint32
			switch mode(ri.Op) {
			case modeABS, modeIND, modeMSH:
				off := uint64(k)
				if mode(ri.Op) == modeIND {
					off += uint64(x)
				}
				n := loadBytes(ri.Op)
				var ok bool
				if v, ok = load(off, n); !ok {
					return 0, false
				}
				if mode(ri.Op) == modeMSH {
					v = 4 * (v & 0xf)
				}
			case modeLEN:
				v = uint32(wireLen)
			case modeIMM:
				v = k
			case modeMEM:
				v = mem[k]
			}
			if class(ri.Op) == clsLD {
				a = v
			} else {
				x = v
			}
		case clsST:
			mem[k] = a
		case clsSTX:
			mem[k] = x
		case clsALU:
			operand := k
			if src(ri.Op) == srcX {
				operand = x
			}
			switch aluOp(ri.Op) {
			case aluADD:
				a += operand
			case aluSUB:
				a -= operand
			case aluMUL:
				a *= operand
			case aluDIV:
				if operand == 0 {
					return 0, false
				}
				a /= operand
			case aluMOD:
				if operand == 0 {
					return 0, false
				}
				a %= operand
			case aluAND:
				a &= operand
			case aluOR:
				a |= operand
			case aluXOR:
				a ^= operand
			case aluLSH:
				a = shift(a, operand, true)
			case aluRSH:
				a = shift(a, operand, false)
			case aluNEG:
				a = -a
			}
		case clsJMP:
			operand := k
			if src(ri.Op) == srcX {
				operand = x
			}
			var taken bool
			switch ri.Op & 0xf0 {
			case jmpJA:
				// Sign-extended, as libpcap does for protochain.
				if int32(k) < 0 {
					if backward++; backward > bound {
						return 0, true
					}
				}
				pc += int(int32(k))
				continue
			case jmpJEQ:
				taken = a == operand
			case jmpJGT:
				taken = a > operand
			case jmpJGE:
				taken = a >= operand
			case jmpJSET:
				taken = a&operand != 0
			}
			if taken {
				pc += int(ri.Jt)
			} else {
				pc += int(ri.Jf)
			}
		case clsMISC:
			if miscOp(ri.Op) == miscTAX {
				x = a
			} else {
				a = x
			}
		}
	}
}

func shift(a, n uint32, left bool) uint32 {
	if n >= 32 {
		return 0
	}
	if left {
		return a << n
	}
	return a >> n
}
