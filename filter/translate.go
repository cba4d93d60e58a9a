package filter

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// ErrUnsupported is returned (wrapped) by Translate for cBPF the translator
// cannot express in eBPF: Linux socket-filter ancillary loads other than
// `len`, and programs too large after unrolling. Callers then capture unfiltered and
// filter in userspace with Matcher (DESIGN, "Filter fallback").
var ErrUnsupported = errors.New("not supported by the cBPF to eBPF translator")

// MaxBackwardJumps bounds how often a translated filter follows cBPF
// backward jumps (libpcap emits one for `protochain`, once per IPv6
// extension or AH header). The loop is unrolled that many times; a packet
// that needs more iterations makes the filter return Undecided, never a
// verdict of its own (see Undecided). Measured on Linux 6.18 (filter -r,
// load and verify): `protochain 6 and protochain 6`, libpcap's largest
// protochain program, takes 2.3k eBPF instructions and ~0.1 s at 10,
// 3.5k and ~0.1 s at 16, 5k and ~0.4 s at 24, 6.8k and ~2 s at 32, 13k and
// ~6 s at 64, and is too large for the verifier at 128. 16 keeps loads
// fast; longer chains are rare and are decided in userspace.
const MaxBackwardJumps = 16

// Undecided is what a translated filter returns when a packet needs more
// than MaxBackwardJumps backward jumps: the unrolled program cannot tell
// whether it matches. Callers must then take Matcher's answer for that
// packet (it follows libpcap's loop; Runner does this). In a capture
// program, which keeps every non-zero verdict, Undecided keeps the packet,
// so a userspace check can still drop it. A cBPF program that itself
// returns 0xffffffff is read as Undecided too; Matcher then gives the same
// verdict (a match).
const Undecided = 0xffffffff

// Backend selects how a translated filter reaches the packet bytes.
type Backend int

const (
	// Direct reads the packet through packet pointers, as XDP and tc
	// programs can: R1 = data, R2 = data_end, R3 = wire length. Loads that
	// end beyond DirectLimit bytes never match.
	Direct Backend = iota
	// Scratch reads a copy of the packet in a map value (tracing hooks
	// copy the skb with bpf_probe_read_kernel): R1 = pointer to the
	// buffer, R2 = captured length, R3 = wire length. Options.ScratchSize
	// is the buffer's size; the captured length is clamped to it.
	Scratch
)

// DirectLimit is the largest packet offset the Direct back end reads:
// the verifier caps packet ranges at 64 KiB, and the caller's data pointer
// may already carry a small offset.
const DirectLimit = 0xff00

// MaxScratchSize is the largest Options.ScratchSize.
const MaxScratchSize = 1 << 24

// String returns the back end's name: "direct" or "scratch".
func (b Backend) String() string {
	switch b {
	case Direct:
		return "direct"
	case Scratch:
		return "scratch"
	}
	return fmt.Sprintf("backend(%d)", int(b))
}

// Options configures Translate.
type Options struct {
	// Backend picks the packet access strategy.
	Backend Backend
	// ScratchSize is the size in bytes of the buffer R1 points to, for
	// the Scratch back end. The verifier must be able to prove that R1
	// points to at least that many bytes.
	ScratchSize int
	// Inline makes a fragment for SpliceInline, which replaces the calls
	// of the stub instead of its body (no bpf-to-bpf call and return per
	// packet): it uses only R0-R5, keeps M[] in the caller's frame at
	// StackOffset, and ends by falling through past its last instruction
	// with the verdict in R0 instead of exiting.
	Inline bool
	// StackOffset is the R10-relative offset of M[0] with Inline; M[]
	// takes 64 bytes from there. InlineStackOffset finds a free one.
	// 0 means -64.
	StackOffset int16
}

// Translate converts a classic BPF program into an eBPF fragment that
// computes the same verdict with libpcap's semantics: out-of-bounds loads
// and division by zero end the program with 0, `len` is the wire length
// (R3), shifts by 32 or more give 0, scratch memory cells read before any
// write read 0, and a run that needs more than MaxBackwardJumps backward
// jumps returns Undecided. The fragment takes its arguments in R1-R3 as described by the
// back end, returns the cBPF return value in R0 (non-zero means match),
// uses R0-R6 and 64 bytes of stack, calls no helpers, and has no
// symbols: Splice it into a stub subprogram (or see Options.Inline). It needs kernel 5.1
// (JMP32), and is written for the verifiers of Linux 6.1 and later.
//
// Programs with constructs that cannot be translated return an error
// wrapping ErrUnsupported; invalid programs return a plain error.
func Translate(prog []bpf.Instruction, opts Options) (asm.Instructions, error) {
	be, err := newBackend(opts)
	if err != nil {
		return nil, err
	}
	if off := opts.StackOffset; opts.Inline && off != 0 && (off > -4*memWords || off < -512 || off%4 != 0) {
		return nil, fmt.Errorf("inline filter: stack offset %d is not a 4-byte aligned offset in -512..-64", off)
	}
	raw, err := assemble(prog)
	if err != nil {
		return nil, err
	}
	g, err := buildGraph(raw)
	if err != nil {
		return nil, err
	}
	if err := g.analyse(); err != nil {
		return nil, err
	}
	g.computeNeed(be.limit())
	return g.emit(be, opts)
}

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

// Node indices with a special meaning in graph successors.
const (
	noNode        = -1
	failNode      = -2 // "return 0"
	undecidedNode = -3 // "return Undecided": the unroll bound is reached
)

// node is one cBPF instruction at one loop iteration of the unrolled,
// forward-only program.
type node struct {
	insn
	iter     int // backward jumps taken before this node
	next     int // successor of non-branching instructions and ja
	jt, jf   int // successors of conditional jumps
	preds    int
	condPred bool // some predecessor is a conditional jump
	zeroA    bool // A may be read before written here
	zeroX    bool
	xNonZero bool // X is a known non-zero constant here
	need     uint64
}

// graph is the cBPF program unrolled into a DAG whose node order is a
// topological order: every edge goes to a later node.
type graph struct {
	nodes        []node
	zeroA, zeroX bool
	zeroMem      uint16 // M[i] may be read before written: zeroed on entry
}

type nodeKey struct{ iter, pc int }

// maxNodes bounds the unrolled program.
const maxNodes = 32768

// buildGraph decodes raw and unrolls backward jumps: a node is a pair
// (instruction, backward jumps taken so far), so edges go either forward
// in the program at the same count or anywhere at a higher count. Sorting
// by (count, pc) is then a topological order.
func buildGraph(raw []bpf.RawInstruction) (*graph, error) {
	n := len(raw)
	if n == 0 {
		return nil, errors.New("invalid cBPF program: no instructions")
	}
	if n > maxInsns {
		return nil, fmt.Errorf("invalid cBPF program: %d instructions, more than %d", n, maxInsns)
	}
	decoded := make([]*insn, n)
	decodeAt := func(pc int) (*insn, error) {
		if decoded[pc] == nil {
			in, err := decode(pc, raw[pc])
			if err != nil {
				return nil, err
			}
			decoded[pc] = &in
		}
		return decoded[pc], nil
	}
	target := func(from, to int) (int, error) {
		if to < 0 || to >= n {
			return 0, fmt.Errorf("invalid cBPF program: instruction %d jumps to %d, outside the program", from, to)
		}
		return to, nil
	}
	// succKeys returns the successors of (iter, pc); iter -1 means the
	// unroll bound is reached (undecided).
	succKeys := func(k nodeKey) ([]nodeKey, error) {
		in, err := decodeAt(k.pc)
		if err != nil {
			return nil, err
		}
		switch in.op {
		case opRetK, opRetA:
			return nil, nil
		case opJa:
			t, err := target(k.pc, jumpTo(k.pc, in.k))
			if err != nil {
				return nil, err
			}
			if t > k.pc {
				return []nodeKey{{k.iter, t}}, nil
			}
			if k.iter+1 > MaxBackwardJumps {
				return []nodeKey{{-1, 0}}, nil // undecided
			}
			return []nodeKey{{k.iter + 1, t}}, nil
		case opJcond:
			t, err := target(k.pc, k.pc+1+int(in.jt))
			if err != nil {
				return nil, err
			}
			f, err := target(k.pc, k.pc+1+int(in.jf))
			if err != nil {
				return nil, err
			}
			return []nodeKey{{k.iter, t}, {k.iter, f}}, nil
		default:
			if k.pc+1 >= n {
				return nil, fmt.Errorf("invalid cBPF program: instruction %d falls off the end", k.pc)
			}
			return []nodeKey{{k.iter, k.pc + 1}}, nil
		}
	}

	// Once no backward jump is reachable, the count no longer matters:
	// such instructions get one copy, at a count above every real one
	// (edges from them only go forward).
	loops := reachesBackwardJump(raw, decodeAt)
	settle := func(k nodeKey) nodeKey {
		if k.iter >= 0 && !loops[k.pc] {
			k.iter = MaxBackwardJumps + 1
		}
		return k
	}
	seen := map[nodeKey]bool{settle(nodeKey{0, 0}): true}
	queue := []nodeKey{settle(nodeKey{0, 0})}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		succ, err := succKeys(k)
		if err != nil {
			return nil, err
		}
		for _, s := range succ {
			s = settle(s)
			if s.iter < 0 || seen[s] {
				continue
			}
			if len(seen) >= maxNodes {
				return nil, fmt.Errorf("cBPF program unrolls to more than %d instructions: %w", maxNodes, ErrUnsupported)
			}
			seen[s] = true
			queue = append(queue, s)
		}
	}
	keys := make([]nodeKey, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].iter != keys[j].iter {
			return keys[i].iter < keys[j].iter
		}
		return keys[i].pc < keys[j].pc
	})
	index := make(map[nodeKey]int, len(keys))
	for i, k := range keys {
		index[k] = i
	}
	g := &graph{nodes: make([]node, len(keys))}
	for i, k := range keys {
		nd := &g.nodes[i]
		nd.insn = *decoded[k.pc]
		nd.iter = k.iter
		nd.next, nd.jt, nd.jf = noNode, noNode, noNode
		succ, _ := succKeys(k)
		ids := make([]int, len(succ))
		for j, s := range succ {
			ids[j] = undecidedNode
			if s.iter >= 0 {
				ids[j] = index[settle(s)]
			}
		}
		switch nd.op {
		case opRetK, opRetA:
		case opJcond:
			nd.jt, nd.jf = ids[0], ids[1]
		default:
			nd.next = ids[0]
		}
	}
	for i := range g.nodes {
		for _, s := range g.succs(i) {
			if s >= 0 {
				g.nodes[s].preds++
				if g.nodes[i].op == opJcond {
					g.nodes[s].condPred = true
				}
			}
		}
	}
	return g, nil
}

// reachesBackwardJump reports for each instruction whether a backward
// jump can be reached from it (decoding errors surface later, during the
// unrolling walk).
func reachesBackwardJump(raw []bpf.RawInstruction, decodeAt func(int) (*insn, error)) []bool {
	n := len(raw)
	loops := make([]bool, n)
	for changed := true; changed; {
		changed = false
		for pc := n - 1; pc >= 0; pc-- {
			if loops[pc] {
				continue
			}
			in, err := decodeAt(pc)
			if err != nil {
				continue
			}
			var succ []int
			switch in.op {
			case opRetK, opRetA:
			case opJa:
				t := jumpTo(pc, in.k)
				if t <= pc {
					loops[pc], changed = true, true
					continue
				}
				succ = []int{t}
			case opJcond:
				succ = []int{pc + 1 + int(in.jt), pc + 1 + int(in.jf)}
			default:
				succ = []int{pc + 1}
			}
			for _, t := range succ {
				if t >= 0 && t < n && loops[t] {
					loops[pc], changed = true, true
					break
				}
			}
		}
	}
	return loops
}

// succs returns the successors of node i (node indices or failNode).
func (g *graph) succs(i int) []int {
	nd := &g.nodes[i]
	switch nd.op {
	case opRetK, opRetA:
		return nil
	case opJcond:
		if nd.jt == nd.jf {
			return []int{nd.jt}
		}
		return []int{nd.jt, nd.jf}
	default:
		return []int{nd.next}
	}
}

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
