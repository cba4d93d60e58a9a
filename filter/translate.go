package filter

import (
	"errors"
	"fmt"

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
