package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// op is a decoded cBPF instruction.
type op int

const (
	opLdAbs  op = iota // A = P[k:size]
	opLdInd            // A = P[X+k:size]
	opLdLen            // dst = wire length
	opLdImm            // dst = k
	opLdMem            // dst = M[k]
	opLdxMsh           // X = 4*(P[k]&0xf)
	opSt               // M[k] = src
	opAluK             // A = A alu k
	opAluX             // A = A alu X
	opNeg              // A = -A
	opTax              // X = A
	opTxa              // A = X
	opJa               // goto
	opJcond            // if A cmp (k|X)
	opRetK             // return k
	opRetA             // return A
)

// reg names a cBPF register in decoded instructions.
type reg int

const (
	regA reg = iota
	regX
)

// insn is one decoded cBPF instruction.
type insn struct {
	op    op
	reg   reg    // destination of loads, source of stores
	size  int    // load width in bytes
	alu   uint16 // ALU or jump operation
	useX  bool   // operand is X rather than k
	k     uint32 // immediate
	jt    uint8  // conditional jump offsets
	jf    uint8  // "
	raw   bpf.RawInstruction
	index int // position in the cBPF program
}

func decode(pc int, ri bpf.RawInstruction) (insn, error) {
	in := insn{raw: ri, k: ri.K, jt: ri.Jt, jf: ri.Jf, index: pc}
	bad := func() (insn, error) {
		return insn{}, fmt.Errorf("invalid cBPF instruction %d: opcode %#x", pc, ri.Op)
	}
	switch class(ri.Op) {
	case clsLD, clsLDX:
		in.reg = regA
		if class(ri.Op) == clsLDX {
			in.reg = regX
		}
		in.size = loadBytes(ri.Op)
		switch m := mode(ri.Op); {
		case m == modeABS && in.reg == regA && in.size != 0:
			if ri.K >= 0xffe00000 {
				// SKF_LL_OFF, SKF_NET_OFF and SKF_AD_OFF: Linux
				// socket-filter extensions, not packet offsets.
				return insn{}, &AncillaryError{PC: pc, Offset: ri.K}
			}
			in.op = opLdAbs
		case m == modeIND && in.reg == regA && in.size != 0:
			in.op = opLdInd
		case m == modeLEN && size(ri.Op) == sizeW:
			in.op = opLdLen
		case m == modeIMM && size(ri.Op) == sizeW:
			in.op = opLdImm
		case m == modeMEM && size(ri.Op) == sizeW:
			if ri.K >= memWords {
				return insn{}, fmt.Errorf("invalid cBPF instruction %d: scratch cell M[%d] out of range", pc, ri.K)
			}
			in.op = opLdMem
		case m == modeMSH && in.reg == regX && size(ri.Op) == sizeB:
			in.op = opLdxMsh
		default:
			return bad()
		}
	case clsST, clsSTX:
		if ri.Op != clsST && ri.Op != clsSTX {
			return bad()
		}
		if ri.K >= memWords {
			return insn{}, fmt.Errorf("invalid cBPF instruction %d: scratch cell M[%d] out of range", pc, ri.K)
		}
		in.op, in.reg = opSt, regA
		if class(ri.Op) == clsSTX {
			in.reg = regX
		}
	case clsALU:
		in.alu = aluOp(ri.Op)
		in.useX = src(ri.Op) == srcX
		switch in.alu {
		case aluADD, aluSUB, aluMUL, aluDIV, aluMOD, aluAND, aluOR, aluXOR, aluLSH, aluRSH:
			in.op = opAluK
			if in.useX {
				in.op = opAluX
			}
		case aluNEG:
			in.op = opNeg
		default:
			return bad()
		}
		if ri.Op&0x07 != clsALU || (in.op != opNeg && ri.Op != clsALU|in.alu|src(ri.Op)) {
			return bad()
		}
	case clsJMP:
		in.alu = ri.Op & 0xf0
		in.useX = src(ri.Op) == srcX
		switch in.alu {
		case jmpJA:
			if in.useX {
				return bad()
			}
			in.op = opJa
		case jmpJEQ, jmpJGT, jmpJGE, jmpJSET:
			in.op = opJcond
		default:
			return bad()
		}
	case clsRET:
		switch ri.Op {
		case clsRET | retK:
			in.op = opRetK
		case clsRET | retA:
			in.op = opRetA
		default:
			return bad()
		}
	case clsMISC:
		switch ri.Op {
		case clsMISC | miscTAX:
			in.op = opTax
		case clsMISC | miscTXA:
			in.op = opTxa
		default:
			return bad()
		}
	}
	return in, nil
}
