package filter

import (
	"golang.org/x/net/bpf"
)

// ReadExtent returns how many bytes from the start of the packet the
// cBPF program prog can read: one past the last byte of its farthest
// packet load. A program given only those first bytes (and the true wire
// length) decides every packet as it would given all of them, so capture
// programs copy that much before filtering and the rest only for packets
// that match.
//
// Indirect loads ([x + k]) are bounded by what the analysis knows of X
// on every path to them: a constant, 4*([k]&0xf) (at most 60), a value
// loaded from the packet (at most 255, 65535 or 2^32-1) and small
// arithmetic on those. bounded is false when some load has no such bound
// (X from the wire length, from a cell written on a path the analysis
// cannot follow, a backward jump) or when prog does not assemble: the
// caller must then copy the whole packet before filtering.
func ReadExtent(prog []bpf.Instruction) (n uint32, bounded bool) {
	raw, err := assemble(prog)
	if err != nil {
		return 0, false
	}
	ext, ok := readExtent(raw)
	if !ok || ext > MaxScratchSize {
		return 0, false
	}
	return uint32(ext), true
}

// unknown is a register bound the analysis cannot give.
const unknown = ^uint64(0)

// regBounds are the largest values A, X and the cells M[] can hold at
// one instruction, over every path to it (unknown: no bound).
type regBounds struct {
	a, x uint64
	m    [memWords]uint64
}

func (r *regBounds) merge(o regBounds) {
	r.a, r.x = max(r.a, o.a), max(r.x, o.x)
	for i := range r.m {
		r.m[i] = max(r.m[i], o.m[i])
	}
}

// addBound adds two bounds; unknown absorbs, and so does overflow.
func addBound(a, b uint64) uint64 {
	if a == unknown || b == unknown || a+b < a || a+b > 1<<40 {
		return unknown
	}
	return a + b
}

// readExtent runs a forward pass over raw (cBPF jumps forward only, apart
// from the backward jumps libpcap's protochain emits, which make the
// result unbounded) and returns the farthest byte any packet load reads.
func readExtent(raw []bpf.RawInstruction) (uint64, bool) {
	in := make([]regBounds, len(raw)+1)
	reached := make([]bool, len(raw)+1)
	if len(raw) == 0 {
		return 0, true
	}
	reached[0] = true // A, X and M[] start at 0
	var ext uint64
	read := func(off, n uint64) bool {
		end := addBound(off, n)
		if end == unknown {
			return false
		}
		ext = max(ext, end)
		return true
	}
	for pc, ri := range raw {
		if !reached[pc] {
			continue
		}
		r := in[pc]
		next := []int{pc + 1}
		width := uint64(loadBytes(ri.Op))
		widthMax := uint64(1)<<(8*width) - 1
		switch class(ri.Op) {
		case clsLD:
			switch mode(ri.Op) {
			case modeIMM:
				r.a = uint64(ri.K)
			case modeABS:
				if ri.K >= ancillaryBase {
					r.a = unknown
					break
				}
				if !read(uint64(ri.K), width) {
					return 0, false
				}
				r.a = widthMax
			case modeIND:
				if !read(addBound(r.x, uint64(ri.K)), width) {
					return 0, false
				}
				r.a = widthMax
			case modeMEM:
				r.a = r.m[ri.K%memWords]
			default: // len
				r.a = unknown
			}
		case clsLDX:
			switch mode(ri.Op) {
			case modeIMM:
				r.x = uint64(ri.K)
			case modeMEM:
				r.x = r.m[ri.K%memWords]
			case modeMSH:
				if !read(uint64(ri.K), 1) {
					return 0, false
				}
				r.x = 60
			default:
				r.x = unknown
			}
		case clsST:
			r.m[ri.K%memWords] = r.a
		case clsSTX:
			r.m[ri.K%memWords] = r.x
		case clsALU:
			r.a = aluBound(ri, r)
		case clsJMP:
			if aluOp(ri.Op) == jmpJA {
				next = []int{jumpTo(pc, ri.K)}
			} else {
				next = []int{pc + 1 + int(ri.Jt), pc + 1 + int(ri.Jf)}
			}
		case clsRET:
			next = nil
		case clsMISC:
			if miscOp(ri.Op) == miscTAX {
				r.x = r.a
			} else {
				r.a = r.x
			}
		}
		for _, to := range next {
			if to <= pc || to > len(raw) {
				return 0, false
			}
			if !reached[to] {
				in[to], reached[to] = r, true
			} else {
				in[to].merge(r)
			}
		}
	}
	return ext, true
}

// aluBound is the bound of A after the ALU instruction ri.
func aluBound(ri bpf.RawInstruction, r regBounds) uint64 {
	if src(ri.Op) == srcX && aluOp(ri.Op) != aluNEG {
		switch aluOp(ri.Op) {
		case aluADD:
			return addBound(r.a, r.x)
		case aluAND:
			return min(r.a, r.x)
		case aluDIV, aluRSH:
			return r.a
		case aluMOD:
			if r.x == unknown {
				return r.a
			}
			return min(r.a, r.x)
		}
		return unknown
	}
	k := uint64(ri.K)
	switch aluOp(ri.Op) {
	case aluADD:
		return addBound(r.a, k)
	case aluAND:
		return min(r.a, k)
	case aluMUL:
		if r.a == unknown || (k != 0 && r.a > (1<<40)/k) {
			return unknown
		}
		return r.a * k
	case aluLSH:
		if r.a == unknown || k >= 32 || r.a<<k > 1<<40 {
			return unknown
		}
		return r.a << k
	case aluDIV:
		if k == 0 {
			return r.a
		}
		return r.a / k
	case aluRSH:
		if r.a == unknown || k >= 64 {
			return r.a
		}
		return r.a >> k
	case aluMOD:
		if k == 0 {
			return r.a
		}
		return min(r.a, k-1)
	}
	return unknown
}
