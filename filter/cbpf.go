package filter

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
)

// Classic BPF opcode fields (linux/filter.h, pcap/bpf.h).
const (
	clsLD   = 0x00
	clsLDX  = 0x01
	clsST   = 0x02
	clsSTX  = 0x03
	clsALU  = 0x04
	clsJMP  = 0x05
	clsRET  = 0x06
	clsMISC = 0x07

	sizeW = 0x00
	sizeH = 0x08
	sizeB = 0x10

	modeIMM = 0x00
	modeABS = 0x20
	modeIND = 0x40
	modeMEM = 0x60
	modeLEN = 0x80
	modeMSH = 0xa0

	aluADD = 0x00
	aluSUB = 0x10
	aluMUL = 0x20
	aluDIV = 0x30
	aluOR  = 0x40
	aluAND = 0x50
	aluLSH = 0x60
	aluRSH = 0x70
	aluNEG = 0x80
	aluMOD = 0x90
	aluXOR = 0xa0

	jmpJA   = 0x00
	jmpJEQ  = 0x10
	jmpJGT  = 0x20
	jmpJGE  = 0x30
	jmpJSET = 0x40

	srcK = 0x00
	srcX = 0x08

	retK = 0x00
	retA = 0x10

	miscTAX = 0x00
	miscTXA = 0x80

	// memWords is the number of scratch memory cells M[].
	memWords = 16
	// maxInsns is BPF_MAXINSNS, the longest cBPF program.
	maxInsns = 4096
	// ancillaryBase is SKF_AD_OFF: absolute loads at or above it are
	// Linux socket-filter extensions, not packet loads.
	ancillaryBase = 0xfffff000
)

func class(op uint16) uint16        { return op & 0x07 }
func size(op uint16) uint16         { return op & 0x18 }
func mode(op uint16) uint16         { return op & 0xe0 }
func aluOp(op uint16) uint16        { return op & 0xf0 }
func src(op uint16) uint16          { return op & 0x08 }
func retSrc(op uint16) uint16       { return op & 0x18 }
func miscOp(op uint16) uint16       { return op & 0xf8 }
func jumpTo(pc int, off uint32) int { return pc + 1 + int(int32(off)) }

// loadBytes returns the width of a BPF_LD/BPF_LDX size field, 0 if invalid.
func loadBytes(op uint16) int {
	switch size(op) {
	case sizeW:
		return 4
	case sizeH:
		return 2
	case sizeB:
		return 1
	}
	return 0
}

// Dump returns prog in the format of `tcpdump -d`: one line per
// instruction, with absolute jump targets.
func Dump(prog []bpf.Instruction) (string, error) {
	raw, err := assemble(prog)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for pc, ri := range raw {
		b.WriteString(imageLine(pc, ri))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// imageLine formats one instruction as libpcap's bpf_image does.
func imageLine(pc int, ri bpf.RawInstruction) string {
	op, operand := imageParts(pc, ri)
	if class(ri.Op) == clsJMP && ri.Op&0xf0 != jmpJA {
		return fmt.Sprintf("(%03d) %-8s %-16s jt %d\tjf %d", pc, op, operand, pc+1+int(ri.Jt), pc+1+int(ri.Jf))
	}
	return fmt.Sprintf("(%03d) %-8s %s", pc, op, operand)
}

func imageParts(pc int, ri bpf.RawInstruction) (string, string) {
	k := ri.K
	switch class(ri.Op) {
	case clsRET:
		switch retSrc(ri.Op) {
		case retK:
			return "ret", fmt.Sprintf("#%d", k)
		case retA:
			return "ret", ""
		}
	case clsLD, clsLDX:
		name := map[uint16]string{sizeW: "ld", sizeH: "ldh", sizeB: "ldb"}[size(ri.Op)]
		if class(ri.Op) == clsLDX {
			name = map[uint16]string{sizeW: "ldx", sizeH: "ldxh", sizeB: "ldxb"}[size(ri.Op)]
		}
		switch mode(ri.Op) {
		case modeABS:
			if class(ri.Op) == clsLD {
				return name, fmt.Sprintf("[%d]", k)
			}
		case modeIND:
			if class(ri.Op) == clsLD {
				return name, fmt.Sprintf("[x + %d]", k)
			}
		case modeLEN:
			return name, "#pktlen"
		case modeIMM:
			return name, fmt.Sprintf("#0x%x", k)
		case modeMEM:
			return name, fmt.Sprintf("M[%d]", k)
		case modeMSH:
			if class(ri.Op) == clsLDX && size(ri.Op) == sizeB {
				return "ldxb", fmt.Sprintf("4*([%d]&0xf)", k)
			}
		}
	case clsST:
		return "st", fmt.Sprintf("M[%d]", k)
	case clsSTX:
		return "stx", fmt.Sprintf("M[%d]", k)
	case clsJMP:
		names := map[uint16]string{jmpJA: "ja", jmpJEQ: "jeq", jmpJGT: "jgt", jmpJGE: "jge", jmpJSET: "jset"}
		name, ok := names[ri.Op&0xf0]
		if !ok {
			break
		}
		if ri.Op&0xf0 == jmpJA {
			return name, fmt.Sprintf("%d", jumpTo(pc, k))
		}
		if src(ri.Op) == srcX {
			return name, "x"
		}
		return name, fmt.Sprintf("#0x%x", k)
	case clsALU:
		names := map[uint16]string{aluADD: "add", aluSUB: "sub", aluMUL: "mul", aluDIV: "div", aluMOD: "mod",
			aluAND: "and", aluOR: "or", aluXOR: "xor", aluLSH: "lsh", aluRSH: "rsh", aluNEG: "neg"}
		name, ok := names[aluOp(ri.Op)]
		if !ok {
			break
		}
		if aluOp(ri.Op) == aluNEG {
			return name, ""
		}
		if src(ri.Op) == srcX {
			return name, "x"
		}
		switch aluOp(ri.Op) {
		case aluAND, aluOR, aluXOR:
			return name, fmt.Sprintf("#0x%x", k)
		}
		return name, fmt.Sprintf("#%d", k)
	case clsMISC:
		switch miscOp(ri.Op) {
		case miscTAX:
			return "tax", ""
		case miscTXA:
			return "txa", ""
		}
	}
	return "unimp", fmt.Sprintf("0x%x", ri.Op)
}
