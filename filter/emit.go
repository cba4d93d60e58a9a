package filter

import (
	"fmt"
	"math"

	"github.com/cilium/ebpf/asm"
)

// eBPF registers of a translated filter.
const (
	rPkt  = asm.R1 // Direct: data; Scratch: buffer
	rEnd  = asm.R2 // Direct: data_end; Scratch: captured length
	rWire = asm.R3 // wire length, for `len`
	rA    = asm.R4 // cBPF A, zero-extended 32 bits
	rX    = asm.R5 // cBPF X, zero-extended 32 bits
	rTmp  = asm.R0
	rTmp2 = asm.R6
)

// defaultStackOffset is where M[0] lives in a stub body: the bottom of
// the subprogram's own 64-byte frame.
const defaultStackOffset = -4 * memWords

// Jump labels: block indices, or one of these.
const (
	labelNone      = -1
	labelFail      = -2 // the shared "return 0" tail
	labelEnd       = -3 // Inline: just past the fragment
	labelUndecided = -4 // the shared "return Undecided" tail
)

// emitter collects eBPF instructions whose jumps name labels, and resolves
// them to offsets at the end.
type emitter struct {
	insns  []asm.Instruction
	labels []int
	inline bool
	stack  int16 // stack offset of M[0]
}

// memOffset is the stack offset of scratch cell M[k].
func (e *emitter) memOffset(k uint32) int16 { return e.stack + int16(4*k) }

// ret ends the filter with the verdict in R0: an exit, or with Inline a
// jump past the fragment.
func (e *emitter) ret(setR0 asm.Instruction) {
	e.add(setR0)
	if e.inline {
		e.jump(ja(), labelEnd)
		return
	}
	e.add(asm.Return())
}

func (e *emitter) add(ins ...asm.Instruction) {
	for _, in := range ins {
		e.insns = append(e.insns, in)
		e.labels = append(e.labels, labelNone)
	}
}

// jump adds a jump instruction to label.
func (e *emitter) jump(ins asm.Instruction, label int) {
	ins.Offset = 0
	e.insns = append(e.insns, ins)
	e.labels = append(e.labels, label)
}

// skip adds a jump over the next n instructions.
func (e *emitter) skip(ins asm.Instruction, n int16) {
	ins.Offset = n
	e.add(ins)
}

// Jump constructors without cilium/ebpf labels: offsets are resolved by
// the emitter. Comparisons of A and X use JMP32 so that immediates with
// bit 31 set compare as the unsigned 32-bit values cBPF means.
func jmp64Imm(op asm.JumpOp, dst asm.Register, imm int32) asm.Instruction {
	return asm.Instruction{OpCode: op.Op(asm.ImmSource), Dst: dst, Constant: int64(imm)}
}

func jmp64Reg(op asm.JumpOp, dst, src asm.Register) asm.Instruction {
	return asm.Instruction{OpCode: op.Op(asm.RegSource), Dst: dst, Src: src}
}

func jmp32Imm(op asm.JumpOp, dst asm.Register, imm uint32) asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.Jump32Class).SetJumpOp(op).SetSource(asm.ImmSource), Dst: dst, Constant: int64(int32(imm))}
}

func jmp32Reg(op asm.JumpOp, dst, src asm.Register) asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.Jump32Class).SetJumpOp(op).SetSource(asm.RegSource), Dst: dst, Src: src}
}

func ja() asm.Instruction { return asm.Instruction{OpCode: asm.Ja.Op(asm.ImmSource)} }

func ebpfSize(n int) asm.Size {
	switch n {
	case 1:
		return asm.Byte
	case 2:
		return asm.Half
	}
	return asm.Word
}

// backend is a packet-access strategy.
type backend interface {
	// limit is the largest packet length the back end can read.
	limit() uint64
	// prologue normalises the arguments.
	prologue(e *emitter)
	// guard fails unless the packet holds at least n bytes (n <= limit).
	guard(e *emitter, n uint64)
	// loadIndirect loads size bytes at X+k into A, unswapped, or fails
	// when they are not all in the packet. k+size <= limit.
	loadIndirect(e *emitter, k uint32, size int)
}

func newBackend(opts Options) (backend, error) {
	switch opts.Backend {
	case Direct:
		return directBackend{inline: opts.Inline}, nil
	case Scratch:
		if opts.ScratchSize <= 0 || opts.ScratchSize > MaxScratchSize {
			return nil, fmt.Errorf("scratch back end: buffer size %d is not in 1..%d", opts.ScratchSize, MaxScratchSize)
		}
		return scratchBackend{size: uint64(opts.ScratchSize), inline: opts.Inline}, nil
	}
	return nil, fmt.Errorf("unknown back end %d", int(opts.Backend))
}

// directBackend reads packets through packet pointers (R1 data, R2
// data_end): each block proves its bytes with one data+n <= data_end check.
type directBackend struct{ inline bool }

func (directBackend) limit() uint64 { return DirectLimit }

func (directBackend) prologue(e *emitter) {
	e.add(asm.Mov.Reg32(rWire, rWire))
}

func (directBackend) guard(e *emitter, n uint64) {
	e.add(asm.Mov.Reg(rTmp, rPkt), asm.Add.Imm(rTmp, int32(n)))
	e.jump(jmp64Reg(asm.JGT, rTmp, rEnd), labelFail)
}

func (d directBackend) loadIndirect(e *emitter, k uint32, size int) {
	// tmp = X + k, bounded by a constant so the verifier accepts the
	// variable packet offset, then data+tmp+size <= data_end.
	e.add(asm.Mov.Reg(rTmp, rX), asm.Add.Imm(rTmp, int32(k)))
	e.jump(jmp64Imm(asm.JGT, rTmp, int32(d.limit()-uint64(size))), labelFail)
	if d.inline {
		// R0 only: tmp = data + X + k + size, checked against
		// data_end, then the load reaches back size bytes.
		e.add(asm.Add.Reg(rTmp, rPkt), asm.Add.Imm(rTmp, int32(size)))
		e.jump(jmp64Reg(asm.JGT, rTmp, rEnd), labelFail)
		e.add(asm.LoadMem(rA, rTmp, int16(-size), ebpfSize(size)))
		return
	}
	e.add(asm.Mov.Reg(rTmp2, rPkt), asm.Add.Reg(rTmp2, rTmp),
		asm.Mov.Reg(rTmp, rTmp2), asm.Add.Imm(rTmp, int32(size)))
	e.jump(jmp64Reg(asm.JGT, rTmp, rEnd), labelFail)
	e.add(asm.LoadMem(rA, rTmp2, 0, ebpfSize(size)))
}

// scratchBackend reads a copy of the packet in a buffer of known size
// (R1 buffer, R2 captured length, clamped to the size): constant offsets
// are checked against the size at translation time, and each block checks
// the captured length once.
type scratchBackend struct {
	size   uint64
	inline bool
}

func (s scratchBackend) limit() uint64 { return s.size }

func (s scratchBackend) prologue(e *emitter) {
	e.add(asm.Mov.Reg32(rWire, rWire), asm.Mov.Reg32(rEnd, rEnd))
	e.skip(jmp64Imm(asm.JLE, rEnd, int32(s.size)), 1)
	e.add(asm.Mov.Imm(rEnd, int32(s.size)))
}

func (scratchBackend) guard(e *emitter, n uint64) {
	e.jump(jmp64Imm(asm.JLT, rEnd, int32(n)), labelFail)
}

func (s scratchBackend) loadIndirect(e *emitter, k uint32, size int) {
	e.add(asm.Mov.Reg(rTmp, rX), asm.Add.Imm(rTmp, int32(k)))
	e.jump(jmp64Imm(asm.JGT, rTmp, int32(s.size-uint64(size))), labelFail)
	if s.inline {
		// R0 only: tmp = X + k + size <= captured length, then the
		// load reaches back size bytes from buf + tmp.
		e.add(asm.Add.Imm(rTmp, int32(size)))
		e.jump(jmp64Reg(asm.JGT, rTmp, rEnd), labelFail)
		e.add(asm.Add.Reg(rTmp, rPkt), asm.LoadMem(rA, rTmp, int16(-size), ebpfSize(size)))
		return
	}
	// The length check uses a register computed afresh from X, not a copy
	// of tmp: a copy would be linked to tmp, and the verifier's precision
	// tracking would then make the captured length precise and stop
	// pruning states that differ only in it.
	e.add(asm.Mov.Imm(rTmp2, int32(k)+int32(size)), asm.Add.Reg(rTmp2, rX))
	e.jump(jmp64Reg(asm.JGT, rTmp2, rEnd), labelFail)
	e.add(asm.Mov.Reg(rTmp2, rPkt), asm.Add.Reg(rTmp2, rTmp),
		asm.LoadMem(rA, rTmp2, 0, ebpfSize(size)))
}

// loadAbs loads size bytes at constant offset k into dst, unswapped. The
// caller's guard has proven them present.
func loadAbs(e *emitter, dst asm.Register, k uint32, size int) {
	if k <= math.MaxInt16 {
		e.add(asm.LoadMem(dst, rPkt, int16(k), ebpfSize(size)))
		return
	}
	e.add(asm.Mov.Reg(rTmp, rPkt), asm.Add.Imm(rTmp, int32(k)), asm.LoadMem(dst, rTmp, 0, ebpfSize(size)))
}

// toHost converts a big-endian load of size bytes in r to a host value.
func toHost(e *emitter, r asm.Register, size int) {
	switch size {
	case 2:
		e.add(asm.HostTo(asm.BE, r, asm.Half))
	case 4:
		e.add(asm.HostTo(asm.BE, r, asm.Word))
	}
}

// block is a basic block of the unrolled program: a chain of nodes that
// runs straight through, entered only at its first node.
type block struct {
	nodes    []int
	need     uint64
	emitted  bool
	known    uint64 // packet length every path into the block has proven
	hasKnown bool
}

// emit lays out the basic blocks in topological order and generates code.
func (g *graph) emit(be backend, opts Options) (asm.Instructions, error) {
	leader := make([]bool, len(g.nodes))
	for i := range g.nodes {
		nd := &g.nodes[i]
		leader[i] = i == 0 || nd.preds != 1 || nd.condPred
	}
	var blocks []*block
	blockOf := make([]int, len(g.nodes))
	for i := range g.nodes {
		if !leader[i] {
			continue
		}
		b := &block{need: g.nodes[i].need}
		blockOf[i] = len(blocks)
		for cur := i; ; {
			b.nodes = append(b.nodes, cur)
			nd := &g.nodes[cur]
			if nd.op == opRetK || nd.op == opRetA || nd.op == opJcond {
				break
			}
			if nd.next < 0 || leader[nd.next] {
				break
			}
			cur = nd.next
		}
		blocks = append(blocks, b)
	}
	// label maps a node id to the label of code for it: its block, or the
	// fail tail when no path from it can match.
	label := func(id int) int {
		if id == undecidedNode {
			return labelUndecided
		}
		if id < 0 {
			return labelFail
		}
		b := blockOf[id]
		if blocks[b].need == infinite {
			return labelFail
		}
		return b
	}
	succLabels := func(b *block) []int {
		last := &g.nodes[b.nodes[len(b.nodes)-1]]
		switch last.op {
		case opRetK, opRetA:
			return nil
		case opJcond:
			return []int{label(last.jt), label(last.jf)}
		}
		return []int{label(last.next)}
	}

	// Emit only blocks reachable through blocks that can match, and
	// track the packet length proven on every path into each block.
	blocks[0].emitted = blocks[0].need != infinite
	blocks[0].hasKnown = true
	for _, b := range blocks {
		if !b.emitted {
			continue
		}
		proven := max(b.known, b.need)
		for _, l := range succLabels(b) {
			if l < 0 {
				continue
			}
			s := blocks[l]
			s.emitted = true
			if !s.hasKnown || proven < s.known {
				s.known, s.hasKnown = proven, true
			}
		}
	}

	e := &emitter{inline: opts.Inline, stack: defaultStackOffset}
	if opts.Inline && opts.StackOffset != 0 {
		e.stack = opts.StackOffset
	}
	if !blocks[0].emitted {
		// No path can match.
		e.add(asm.Mov.Imm32(asm.R0, 0))
		if !e.inline {
			e.add(asm.Return())
		}
		return e.insns, nil
	}
	be.prologue(e)
	if g.zeroA {
		e.add(asm.Mov.Imm32(rA, 0))
	}
	if g.zeroX {
		e.add(asm.Mov.Imm32(rX, 0))
	}
	for k := uint32(0); k < memWords; k++ {
		if g.zeroMem&(1<<k) != 0 {
			e.add(asm.StoreImm(asm.RFP, e.memOffset(k), 0, asm.Word))
		}
	}
	order := make([]int, 0, len(blocks))
	for i, b := range blocks {
		if b.emitted {
			order = append(order, i)
		}
	}
	start := make([]int, len(blocks))
	for pos, bi := range order {
		b := blocks[bi]
		next := labelFail // what follows this block in the layout
		if pos+1 < len(order) {
			next = order[pos+1]
		}
		start[bi] = len(e.insns)
		if b.need > b.known {
			be.guard(e, b.need)
		}
		for _, id := range b.nodes {
			g.emitNode(e, be, id)
		}
		last := &g.nodes[b.nodes[len(b.nodes)-1]]
		switch last.op {
		case opRetK, opRetA:
		case opJcond:
			g.emitBranch(e, last, label(last.jt), label(last.jf), next)
		default:
			if t := label(last.next); t != next {
				e.jump(ja(), t)
			}
		}
	}
	failAt := len(e.insns)
	for _, l := range e.labels {
		if l == labelFail {
			e.ret(asm.Mov.Imm32(asm.R0, 0))
			break
		}
	}
	undecidedAt := len(e.insns)
	for _, l := range e.labels {
		if l == labelUndecided {
			e.ret(asm.Mov.Imm32(asm.R0, -1)) // Undecided
			break
		}
	}
	// A final jump past the end is a no-op.
	if n := len(e.insns); e.inline && e.labels[n-1] == labelEnd {
		e.insns, e.labels = e.insns[:n-1], e.labels[:n-1]
	}
	// Resolve labels to offsets. Every instruction is one slot wide.
	for i, l := range e.labels {
		if l == labelNone {
			continue
		}
		to := failAt
		switch {
		case l >= 0:
			to = start[l]
		case l == labelEnd:
			to = len(e.insns)
		case l == labelUndecided:
			to = undecidedAt
		}
		off := to - i - 1
		if off < 0 || off > math.MaxInt16 {
			return nil, fmt.Errorf("translated filter too large: jump of %d instructions: %w", off, ErrUnsupported)
		}
		e.insns[i].Offset = int16(off)
	}
	return e.insns, nil
}

// emitBranch ends a block with a cBPF conditional jump to labels t and f,
// falling through to next where it can (inverting the test when the true
// branch is next, cBPF's jt == 0).
func (g *graph) emitBranch(e *emitter, nd *node, t, f, next int) {
	test := func(op asm.JumpOp) asm.Instruction {
		if nd.useX {
			return jmp32Reg(op, rA, rX)
		}
		return jmp32Imm(op, rA, nd.k)
	}
	var op, inverse asm.JumpOp
	switch nd.alu {
	case jmpJEQ:
		op, inverse = asm.JEq, asm.JNE
	case jmpJGT:
		op, inverse = asm.JGT, asm.JLE
	case jmpJGE:
		op, inverse = asm.JGE, asm.JLT
	case jmpJSET:
		op, inverse = asm.JSet, asm.InvalidJumpOp
	}
	switch {
	case t == f:
		if t != next {
			e.jump(ja(), t)
		}
	case f == next:
		e.jump(test(op), t)
	case t == next && inverse != asm.InvalidJumpOp:
		e.jump(test(inverse), f)
	default:
		e.jump(test(op), t)
		e.jump(ja(), f)
	}
}

// emitNode generates the code of one node, except the jump that ends a
// block.
func (g *graph) emitNode(e *emitter, be backend, id int) {
	nd := &g.nodes[id]
	dst := rA
	if nd.reg == regX {
		dst = rX
	}
	switch nd.op {
	case opLdAbs:
		loadAbs(e, rA, nd.k, nd.size)
		toHost(e, rA, nd.size)
	case opLdInd:
		be.loadIndirect(e, nd.k, nd.size)
		toHost(e, rA, nd.size)
	case opLdxMsh:
		loadAbs(e, rX, nd.k, 1)
		e.add(asm.And.Imm32(rX, 0xf), asm.LSh.Imm32(rX, 2))
	case opLdLen:
		e.add(asm.Mov.Reg32(dst, rWire))
	case opLdImm:
		e.add(asm.Mov.Imm32(dst, int32(nd.k)))
	case opLdMem:
		e.add(asm.LoadMem(dst, asm.RFP, e.memOffset(nd.k), asm.Word))
	case opSt:
		e.add(asm.StoreMem(asm.RFP, e.memOffset(nd.k), dst, asm.Word))
	case opAluK:
		g.emitAluK(e, nd)
	case opAluX:
		g.emitAluX(e, nd)
	case opNeg:
		e.add(asm.Neg.Imm32(rA, 0))
	case opTax:
		e.add(asm.Mov.Reg32(rX, rA))
	case opTxa:
		e.add(asm.Mov.Reg32(rA, rX))
	case opRetK:
		e.ret(asm.Mov.Imm32(asm.R0, int32(nd.k)))
	case opRetA:
		e.ret(asm.Mov.Reg32(asm.R0, rA))
	case opJa, opJcond:
		// Control flow is the block's terminator.
	}
}

func ebpfALU(alu uint16) asm.ALUOp {
	switch alu {
	case aluADD:
		return asm.Add
	case aluSUB:
		return asm.Sub
	case aluMUL:
		return asm.Mul
	case aluDIV:
		return asm.Div
	case aluMOD:
		return asm.Mod
	case aluAND:
		return asm.And
	case aluOR:
		return asm.Or
	case aluXOR:
		return asm.Xor
	case aluLSH:
		return asm.LSh
	case aluRSH:
		return asm.RSh
	}
	panic(fmt.Sprintf("filter: no eBPF ALU op for cBPF %#x", alu))
}

func (g *graph) emitAluK(e *emitter, nd *node) {
	switch {
	case nd.k == 0 && (nd.alu == aluADD || nd.alu == aluSUB || nd.alu == aluOR || nd.alu == aluXOR || nd.alu == aluLSH || nd.alu == aluRSH),
		nd.k == 1 && (nd.alu == aluMUL || nd.alu == aluDIV),
		nd.k == 0xffffffff && nd.alu == aluAND:
		// Leaves A as it is (libpcap emits `add #0` in protochain).
	case (nd.alu == aluLSH || nd.alu == aluRSH) && nd.k >= 32:
		// libpcap and Go shift everything out; eBPF would mask the count.
		e.add(asm.Mov.Imm32(rA, 0))
	default:
		// Division by the constant 0 never gets here: its node cannot
		// match, so its block is not emitted.
		e.add(ebpfALU(nd.alu).Imm32(rA, int32(nd.k)))
	}
}

func (g *graph) emitAluX(e *emitter, nd *node) {
	op := ebpfALU(nd.alu)
	switch nd.alu {
	case aluDIV, aluMOD:
		if !nd.xNonZero {
			e.jump(jmp32Imm(asm.JEq, rX, 0), labelFail)
		}
		e.add(op.Reg32(rA, rX))
	case aluLSH, aluRSH:
		// A shift by 32 or more gives 0, as in libpcap.
		e.skip(jmp32Imm(asm.JLT, rX, 32), 2)
		e.add(asm.Mov.Imm32(rA, 0))
		e.skip(ja(), 1)
		e.add(op.Reg32(rA, rX))
	default:
		e.add(op.Reg32(rA, rX))
	}
}
