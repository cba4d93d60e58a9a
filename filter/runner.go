package filter

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Path says how a Runner reached a packet's verdict.
type Path int

const (
	// PathDirect is a kernel test run of the Direct back end.
	PathDirect Path = iota
	// PathScratch is a kernel test run of the Scratch back end, for
	// packets longer than MaxDirectTestPacket.
	PathScratch
	// PathLong is Matcher, for packets longer than TestScratchSize (or
	// than MaxDirectTestPacket on kernels without XDP frags): no test
	// program takes them whole.
	PathLong
	// PathUndecided is Matcher, after the kernel returned Undecided (the
	// packet needs more backward jumps than the unrolled loop has).
	PathUndecided
)

// String names the path.
func (p Path) String() string {
	switch p {
	case PathDirect:
		return "direct"
	case PathScratch:
		return "scratch"
	case PathLong:
		return "userspace (long packet)"
	case PathUndecided:
		return "userspace (undecided)"
	}
	return fmt.Sprintf("path(%d)", int(p))
}

// Runner runs one filter on whole packets of any length with libpcap's
// answer: in the kernel where a test program takes the packet (Direct up
// to MaxDirectTestPacket bytes, Scratch up to TestScratchSize), and with
// Matcher for longer packets and for packets on which the kernel returns
// Undecided. FileRunner checks the kernel translation with it.
type Runner struct {
	tb      *TestBed
	prog    []bpf.Instruction
	m       *Matcher
	direct  *KernelFilter
	scratch *KernelFilter // loaded on the first packet that needs it
}

// NewRunner translates prog and loads it for the Direct back end (the
// Scratch one is loaded when a packet first needs it). Errors are
// Translate's, NewMatcher's or the kernel's (see Load).
func (tb *TestBed) NewRunner(prog []bpf.Instruction) (*Runner, error) {
	m, err := NewMatcher(prog)
	if err != nil {
		return nil, err
	}
	kf, err := tb.Load(prog, Direct)
	if err != nil {
		return nil, err
	}
	return &Runner{tb: tb, prog: prog, m: m, direct: kf}, nil
}

// Close unloads the runner's programs.
func (r *Runner) Close() error {
	err := r.direct.Close()
	if r.scratch != nil {
		if serr := r.scratch.Close(); err == nil {
			err = serr
		}
	}
	return err
}

// Run returns the filter's return value for a packet (data: the captured
// bytes; wireLen: the length on the wire, libpcap's `len`, which may be
// less than len(data) in files that say so) and how it was reached.
func (r *Runner) Run(data []byte, wireLen int) (uint32, Path, error) {
	if len(data) > TestScratchSize || (r.tb.linear && len(data) > MaxDirectTestPacket) {
		// No test program takes the packet whole (on kernels without
		// XDP frags, before 5.18, none takes more than
		// MaxDirectTestPacket bytes).
		return r.m.Run(data, wireLen), PathLong, nil
	}
	kf, path := r.direct, PathDirect
	if len(data) > MaxDirectTestPacket {
		if r.scratch == nil {
			s, err := r.tb.Load(r.prog, Scratch)
			if err != nil {
				return 0, PathScratch, err
			}
			r.scratch = s
		}
		kf, path = r.scratch, PathScratch
	}
	ret, err := kf.Run(data, wireLen)
	if err != nil {
		return 0, path, err
	}
	if ret == Undecided {
		return r.m.Run(data, wireLen), PathUndecided, nil
	}
	return ret, path, nil
}
