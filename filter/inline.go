package filter

import (
	"errors"
	"fmt"
	"math"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// callSites returns the indices of the calls of stub in insns.
func callSites(insns asm.Instructions, stub string) []int {
	var calls []int
	for i := range insns {
		if insns[i].IsFunctionCall() && insns[i].Reference() == stub {
			calls = append(calls, i)
		}
	}
	return calls
}

// functionAround returns the bounds [start, end) of the function that
// holds instruction i: functions start at instructions with a symbol.
func functionAround(insns asm.Instructions, i int) (int, int) {
	start := 0
	for j := i; j >= 0; j-- {
		if insns[j].Symbol() != "" {
			start = j
			break
		}
	}
	end := len(insns)
	for j := i + 1; j < len(insns); j++ {
		if insns[j].Symbol() != "" {
			end = j
			break
		}
	}
	return start, end
}

// lowestStackUse returns the lowest R10-relative offset the instructions
// access directly or through a pointer derived from R10 (0 if none).
func lowestStackUse(insns asm.Instructions) int {
	low := 0
	fp := map[asm.Register]int{asm.RFP: 0} // registers holding R10 + offset
	for _, ins := range insns {
		op := ins.OpCode
		switch cls := op.Class(); {
		case cls.IsLoad() || cls.IsStore():
			for _, r := range []asm.Register{ins.Src, ins.Dst} {
				if base, ok := fp[r]; ok && (r == ins.Src && cls.IsLoad() || r == ins.Dst && cls.IsStore()) {
					low = min(low, base+int(ins.Offset))
				}
			}
			if cls.IsLoad() && ins.Dst != asm.RFP {
				delete(fp, ins.Dst)
			}
		case cls == asm.ALU64Class && op.ALUOp() == asm.Mov && op.Source() == asm.RegSource:
			if base, ok := fp[ins.Src]; ok && ins.Dst != asm.RFP {
				fp[ins.Dst] = base
			} else {
				delete(fp, ins.Dst)
			}
		case cls == asm.ALU64Class && op.ALUOp() == asm.Add && op.Source() == asm.ImmSource:
			if base, ok := fp[ins.Dst]; ok && ins.Dst != asm.RFP {
				fp[ins.Dst] = base + int(ins.Constant)
				low = min(low, fp[ins.Dst])
			}
		case cls.IsALU():
			delete(fp, ins.Dst)
		case cls.IsJump() && op.JumpOp() == asm.Call:
			for r := asm.R0; r <= asm.R5; r++ {
				delete(fp, r)
			}
		}
	}
	return low
}

// InlineStackOffset returns an Options.StackOffset for an Inline
// translation spliced into spec: 64 bytes below all the stack that the
// functions calling stub use. It fails when stub is never called or the
// frame has no 64 bytes left (then Splice into the stub instead).
func InlineStackOffset(spec *ebpf.ProgramSpec, stub string) (int16, error) {
	calls := callSites(spec.Instructions, stub)
	if len(calls) == 0 {
		return 0, fmt.Errorf("inline filter into program %s: no call of %s", spec.Name, stub)
	}
	low := 0
	for _, c := range calls {
		start, end := functionAround(spec.Instructions, c)
		low = min(low, lowestStackUse(spec.Instructions[start:end]))
	}
	off := (low-7)/8*8 - 4*memWords // 8-byte aligned, below everything
	if low%8 == 0 {
		off = low - 4*memWords
	}
	if off < -512 {
		return 0, fmt.Errorf("inline filter into program %s: its frame uses %d bytes of stack, no room for 64 more: %w", spec.Name, -low, ErrUnsupported)
	}
	return int16(off), nil
}

// SpliceInline replaces every call of the stub subprogram in spec with
// insns, a translation with Options.Inline and an Options.StackOffset
// from InlineStackOffset, and removes the stub, which nothing calls any
// more. The fragment reads the arguments the caller put in R1-R3 for the
// call and leaves the verdict in R0, as the call did; jumps of the caller
// that cross a call site are moved. This saves a bpf-to-bpf call and
// return per packet (costly on CPUs with return-stack mitigations).
//
// It fails when stub is not called, or when insns exit, call, write R6-R9
// or carry symbols (not an Inline translation).
func SpliceInline(spec *ebpf.ProgramSpec, stub string, insns asm.Instructions) error {
	if spec == nil {
		return errors.New("inline filter: nil program spec")
	}
	if len(insns) == 0 {
		return fmt.Errorf("inline filter into program %s: no instructions", spec.Name)
	}
	for i := range insns {
		ins := &insns[i]
		op := ins.OpCode
		switch {
		case ins.Symbol() != "" || ins.Reference() != "":
			return fmt.Errorf("inline filter into program %s: instruction %d carries a symbol or reference", spec.Name, i)
		case op.Class().IsJump() && (op.JumpOp() == asm.Exit || op.JumpOp() == asm.Call):
			return fmt.Errorf("inline filter into program %s: instruction %d (%v) exits or calls: translate with Options.Inline", spec.Name, i, *ins)
		case (op.Class().IsALU() || op.Class().IsLoad()) && ins.Dst > asm.R5 && ins.Dst != asm.RFP:
			return fmt.Errorf("inline filter into program %s: instruction %d (%v) writes %v, which the caller may hold", spec.Name, i, *ins, ins.Dst)
		case op.Class().IsStore() && ins.Dst == asm.RFP && ins.Offset >= 0:
			return fmt.Errorf("inline filter into program %s: instruction %d stores above the frame", spec.Name, i)
		}
		if op.IsDWordLoad() {
			return fmt.Errorf("inline filter into program %s: instruction %d is a 64-bit immediate load", spec.Name, i)
		}
	}
	calls := callSites(spec.Instructions, stub)
	if len(calls) == 0 {
		return fmt.Errorf("inline filter into program %s: no call of %s (the stub must be a static __noinline function the program calls)", spec.Name, stub)
	}
	out := make(asm.Instructions, len(spec.Instructions))
	copy(out, spec.Instructions)
	// Last call first, so earlier indices stay valid.
	for ci := len(calls) - 1; ci >= 0; ci-- {
		c := calls[ci]
		fstart, fend := functionAround(out, c)
		if err := shiftJumpsAround(out[fstart:fend], c-fstart, len(insns)-1); err != nil {
			return fmt.Errorf("inline filter into program %s: %w", spec.Name, err)
		}
		body := make(asm.Instructions, len(insns))
		copy(body, insns)
		// The call's line info stays with the first inlined instruction.
		if src := out[c].Source(); src != nil {
			body[0] = body[0].WithSource(src)
		}
		out = append(out[:c], append(body, out[c+1:]...)...)
	}
	// Remove the stub: the verifier refuses a function nobody calls.
	for i := range out {
		if out[i].Symbol() == stub {
			_, end := functionAround(out, i)
			out = append(out[:i], out[end:]...)
			break
		}
	}
	spec.Instructions = out
	return nil
}

// shiftJumpsAround moves the jumps in fn (one function) that cross the
// instruction at index at, which grows by extra slots.
func shiftJumpsAround(fn asm.Instructions, at, extra int) error {
	// Raw slot positions: 64-bit immediate loads take two.
	pos := make([]int, len(fn)+1)
	for i := range fn {
		pos[i+1] = pos[i] + int(fn[i].Size()/asm.InstructionSize)
	}
	site := pos[at]
	for i := range fn {
		ins := &fn[i]
		op := ins.OpCode
		if !op.Class().IsJump() || op.JumpOp() == asm.Call || op.JumpOp() == asm.Exit || ins.Reference() != "" {
			continue
		}
		long := op.Class() == asm.Jump32Class && op.JumpOp() == asm.Ja
		off := int(ins.Offset)
		if long {
			off = int(ins.Constant)
		}
		from := pos[i]
		to := from + 1 + off
		switch {
		case from < site && to > site:
			off += extra
		case from > site && to <= site:
			off -= extra
		default:
			continue
		}
		if long {
			ins.Constant = int64(off)
		} else if off > math.MaxInt16 || off < math.MinInt16 {
			return fmt.Errorf("jump at %d no longer reaches its target", i)
		} else {
			ins.Offset = int16(off)
		}
	}
	return nil
}
