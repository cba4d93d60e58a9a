package filter

import (
	"math"
)

// regState is what the forward analysis knows at a node.
type regState struct {
	valid    bool   // some predecessor has been merged in
	aWritten bool   // A written on every path
	xWritten bool   // X written on every path
	mem      uint16 // M[i] written on every path
	xConst   bool   // X holds the same constant on every path
	xValue   uint32
}

func (s regState) meet(o regState) regState {
	if !s.valid {
		return o
	}
	r := regState{
		valid:    true,
		aWritten: s.aWritten && o.aWritten,
		xWritten: s.xWritten && o.xWritten,
		mem:      s.mem & o.mem,
	}
	if s.xConst && o.xConst && s.xValue == o.xValue {
		r.xConst, r.xValue = true, s.xValue
	}
	return r
}

// analyse runs the forward pass: which registers and scratch cells may be
// read before they are written (those are zeroed on entry, as the kernel
// does for A and X and libpcap's bpf_filter for M[]), and where X is a
// known non-zero constant (no division guard needed).
func (g *graph) analyse() error {
	in := make([]regState, len(g.nodes))
	// Unwritten X reads as the zero it is initialised to.
	in[0] = regState{valid: true, xConst: true}
	for i := range g.nodes {
		nd := &g.nodes[i]
		s := in[i]
		readA := func() {
			if !s.aWritten {
				g.zeroA = true
			}
		}
		readX := func() {
			if !s.xWritten {
				g.zeroX = true
			}
		}
		switch nd.op {
		case opLdAbs:
			s.aWritten = true
		case opLdInd:
			readX()
			s.aWritten = true
		case opLdLen, opLdImm, opLdMem:
			if nd.op == opLdMem && s.mem&(1<<nd.k) == 0 {
				// libpcap's bpf_filter zeroes M[] before
				// each run (the kernel's classic checker
				// refuses such programs instead).
				g.zeroMem |= 1 << nd.k
			}
			if nd.reg == regA {
				s.aWritten = true
			} else {
				s.xWritten = true
				s.xConst = nd.op == opLdImm
				s.xValue = nd.k
			}
		case opLdxMsh:
			s.xWritten, s.xConst = true, false
		case opSt:
			if nd.reg == regA {
				readA()
			} else {
				readX()
			}
			s.mem |= 1 << nd.k
		case opAluK, opNeg:
			readA()
		case opAluX:
			readA()
			readX()
			nd.xNonZero = s.xConst && s.xValue != 0
		case opTax:
			readA()
			s.xWritten, s.xConst = true, false
		case opTxa:
			readX()
			s.aWritten = true
		case opJcond:
			readA()
			if nd.useX {
				readX()
			}
		case opRetA:
			readA()
		}
		for _, succ := range g.succs(i) {
			if succ >= 0 {
				in[succ] = in[succ].meet(s)
			}
		}
	}
	return nil
}

// infinite marks a node from which no path can match.
const infinite = math.MaxUint64

// computeNeed runs the backward pass: need is the packet length every
// possibly-matching path from a node requires, because it loads that far
// before returning non-zero. A node that cannot match has need infinite:
// every path from it returns 0, divides by the constant 0 or loads beyond
// limit, the most the back end can read.
func (g *graph) computeNeed(limit uint64) {
	needOf := func(id int) uint64 {
		if id == undecidedNode {
			return 0 // returns non-zero, needs no bytes
		}
		if id < 0 {
			return infinite
		}
		return g.nodes[id].need
	}
	atLeast := func(end uint64, rest uint64) uint64 {
		if end > limit || rest == infinite {
			return infinite
		}
		return max(end, rest)
	}
	for i := len(g.nodes) - 1; i >= 0; i-- {
		nd := &g.nodes[i]
		switch nd.op {
		case opRetK:
			nd.need = 0
			if nd.k == 0 {
				nd.need = infinite
			}
		case opRetA:
			nd.need = 0
		case opJcond:
			nd.need = min(needOf(nd.jt), needOf(nd.jf))
		case opLdAbs:
			nd.need = atLeast(uint64(nd.k)+uint64(nd.size), needOf(nd.next))
		case opLdxMsh:
			nd.need = atLeast(uint64(nd.k)+1, needOf(nd.next))
		case opLdInd:
			nd.need = atLeast(0, needOf(nd.next))
			if uint64(nd.k)+uint64(nd.size) > limit {
				nd.need = infinite
			}
		case opAluK:
			nd.need = needOf(nd.next)
			if (nd.alu == aluDIV || nd.alu == aluMOD) && nd.k == 0 {
				nd.need = infinite
			}
		default:
			nd.need = needOf(nd.next)
		}
	}
}
