package filter

import (
	"errors"
	"fmt"
	"sort"

	"golang.org/x/net/bpf"
)

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
