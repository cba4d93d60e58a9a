package filter

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/net/bpf"
)

// Kernel check of FileRunner: the packets it also runs in the kernel.
const (
	// KernelCheckFirst is how many packets of a file FileRunner runs in
	// the kernel first, every one of them.
	KernelCheckFirst = 256
	// KernelCheckEvery is, after those, the share it runs: one packet in
	// KernelCheckEvery.
	KernelCheckEvery = 1024
)

// FileRunner decides the packets of a capture file for one filter
// expression with libpcap's answer, as tcpdump -r does, and checks the
// kernel translation on a sample of them.
//
// The expression is compiled for each interface format of the file
// (CompileFile). Packets of a pcap file are decided by libpcap's own
// filter (pcap_offline_filter) in the loop that reads them, in C, as in
// tcpdump; packets of pcapng files, and every packet when the program has
// a backward jump (protochain, on which libpcap can loop without end), by
// Matcher.
//
// The kernel check: each compiled filter is also loaded into the kernel
// test programs (a Runner) and run there with BPF_PROG_TEST_RUN on the
// first KernelCheckFirst packets and one in KernelCheckEvery after; a
// kernel answer other than Matcher's ends the run with a
// *KernelMismatchError. One test run costs about two microseconds, several
// times what tcpdump spends on a packet, which is why not every packet
// runs in the kernel.
//
// A FileRunner needs what a TestBed needs (CAP_BPF and CAP_NET_ADMIN, or
// root). It is not safe for concurrent use.
type FileRunner struct {
	expr  string
	opts  FileRunnerOptions
	tb    *TestBed
	stats FileStats

	filters map[FileFormat]*fileFilter
	// last is the filter of the last packet's format.
	last       *fileFilter
	lastFormat FileFormat
	// inC is the pcap reader whose C loop runs libpcap's filter.
	inC *pcapFile
}

// FileRunnerOptions are the options of NewFileRunner.
type FileRunnerOptions struct {
	// Netmask is as for CompileNetmask (tcpdump -r: 0).
	Netmask uint32
	// LinkType, if not nil, is the link type the file must have: another
	// one is a *LinkTypeError.
	LinkType *LinkType
}

// fileFilter is the filter compiled and loaded for one file format.
type fileFilter struct {
	prog   []bpf.Instruction
	m      *Matcher
	kernel *Runner
	// loops: the program has a backward jump; libpcap may not end.
	loops bool
}

// FileStats counts what a FileRunner did.
type FileStats struct {
	// Packets is how many packets it decided, Matched how many matched.
	Packets, Matched int
	// KernelChecked is how many of them also ran in the kernel, with
	// the same answer as libpcap's semantics.
	KernelChecked int
	// KernelSkipped is how many of the packets picked for the kernel
	// check no kernel program decides (longer than a test program
	// takes, or a protochain walk longer than the translation unrolls).
	KernelSkipped int
}

// KernelMismatchError is returned when the kernel translation of a filter
// gives another answer on a packet than libpcap's semantics (Matcher).
type KernelMismatchError struct {
	// Packet is the packet's number in the file, from 1.
	Packet int
	// Kernel and Libpcap are the two return values (0: no match).
	Kernel, Libpcap uint32
	// Path is the kernel program that ran.
	Path Path
}

func (e *KernelMismatchError) Error() string {
	return fmt.Sprintf("packet %d: the kernel (%s back end) returned %d, libpcap's semantics %d", e.Packet, e.Path, e.Kernel, e.Libpcap)
}

// ReadError is returned by FileRunner.Next when reading the file failed
// (a damaged or truncated file, an input error).
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "read: " + e.Err.Error() }

// Unwrap returns the reader's error.
func (e *ReadError) Unwrap() error { return e.Err }

// LinkTypeError is returned when a file's interface has another link type
// than FileRunnerOptions.LinkType.
type LinkTypeError struct {
	// File is the link type of the file's interface, Want the one asked
	// for.
	File, Want LinkType
}

func (e *LinkTypeError) Error() string {
	return fmt.Sprintf("the file has link type %s, not %s", e.File, e.Want)
}

// NewFileRunner opens the kernel test bed for expr. Errors are
// NewTestBed's.
func NewFileRunner(expr string, opts FileRunnerOptions) (*FileRunner, error) {
	tb, err := NewTestBed()
	if err != nil {
		return nil, err
	}
	return &FileRunner{expr: expr, opts: opts, tb: tb, filters: map[FileFormat]*fileFilter{}}, nil
}

// Close unloads the filters and closes the test bed.
func (fr *FileRunner) Close() error {
	var err error
	for _, ff := range fr.filters {
		if cerr := ff.kernel.Close(); err == nil {
			err = cerr
		}
	}
	if cerr := fr.tb.Close(); err == nil {
		err = cerr
	}
	return err
}

// Prepare compiles and loads the filter for a format, if not done yet.
// Next prepares formats as they come; call it to refuse an expression
// before reading packets. Errors: a *LinkTypeError, CompileFile's
// (libpcap refuses the expression for the link type), NewMatcher's and
// NewRunner's (the kernel refuses the translation).
func (fr *FileRunner) Prepare(f FileFormat) error {
	_, err := fr.filter(f)
	return err
}

func (fr *FileRunner) filter(f FileFormat) (*fileFilter, error) {
	if fr.last != nil && f == fr.lastFormat {
		return fr.last, nil
	}
	ff, ok := fr.filters[f]
	if !ok {
		if want := fr.opts.LinkType; want != nil && *want != f.LinkType {
			return nil, &LinkTypeError{File: f.LinkType, Want: *want}
		}
		prog, err := CompileFile(fr.expr, f.LinkType, f.Snaplen, f.Swapped, fr.opts.Netmask)
		if err != nil {
			return nil, err
		}
		m, err := NewMatcher(prog)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", fr.expr, err)
		}
		r, err := fr.tb.NewRunner(prog)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", fr.expr, err)
		}
		ff = &fileFilter{prog: prog, m: m, kernel: r, loops: hasBackwardJump(m.prog)}
		fr.filters[f] = ff
	}
	fr.last, fr.lastFormat = ff, f
	return ff, nil
}

// hasBackwardJump reports whether a program jumps backwards (libpcap's
// protochain loop).
func hasBackwardJump(prog []bpf.RawInstruction) bool {
	for _, ri := range prog {
		if class(ri.Op) == clsJMP && ri.Op&0xf0 == jmpJA && int32(ri.K) < 0 {
			return true
		}
	}
	return false
}

// Next reads packets from rd and returns the next one that matches, or
// io.EOF after the last packet. For pcapng input read with keepBlocks, the
// packet's Blocks hold every block since the previous packet Next
// returned but the packet blocks of packets that did not match. It checks
// ctx between batches of packets. Errors: a *ReadError, Prepare's, a
// kernel test run's, a *KernelMismatchError, or ctx's.
func (fr *FileRunner) Next(ctx context.Context, rd *FileReader) (FilePacket, error) {
	if rd.pcap != nil && rd.pcap != fr.inC {
		// A pcap file has one format: libpcap's filter for it runs
		// in the reading loop, unless it may loop.
		ff, err := fr.filter(rd.pcap.format)
		if err != nil {
			return FilePacket{}, err
		}
		if !ff.loops {
			raw, err := assemble(ff.prog)
			if err != nil {
				return FilePacket{}, err
			}
			rd.pcap.setFilter(raw)
		}
		fr.inC = rd.pcap
	}
	for {
		if err := ctx.Err(); err != nil {
			return FilePacket{}, err
		}
		p, libpcap, num, err := rd.next()
		if err == errBatchEmpty {
			continue
		}
		if errors.Is(err, io.EOF) {
			if rd.pcap != nil {
				fr.stats.Packets = int(rd.pcap.seen)
			}
			return FilePacket{}, io.EOF
		}
		if err != nil {
			return FilePacket{}, &ReadError{Err: err}
		}
		fr.stats.Packets = int(num)
		matched, err := fr.decide(rd, p, libpcap, num)
		if err != nil {
			return FilePacket{}, err
		}
		if matched {
			fr.stats.Matched++
			return p, nil
		}
		rd.skip(p)
	}
}

// decide returns libpcap's answer on packet num, and runs the kernel check
// on it if it is one of those picked.
func (fr *FileRunner) decide(rd *FileReader, p FilePacket, libpcap bool, num uint64) (bool, error) {
	ff, err := fr.filter(p.Format)
	if err != nil {
		return false, err
	}
	check := num <= KernelCheckFirst || num%KernelCheckEvery == 0
	inC := rd.pcap != nil && !ff.loops
	var ret uint32 // Matcher's answer
	if !inC || check {
		ret = ff.m.Run(p.Data, p.WireLen)
	}
	if check {
		if err := fr.check(ff, p, ret); err != nil {
			return false, err
		}
	}
	if inC {
		return libpcap, nil
	}
	return ret != 0, nil
}

// check runs the packet in the kernel and compares its answer with want,
// Matcher's.
func (fr *FileRunner) check(ff *fileFilter, p FilePacket, want uint32) error {
	got, path, err := ff.kernel.Run(p.Data, p.WireLen)
	if err != nil {
		return fmt.Errorf("packet %d: %w", fr.stats.Packets, err)
	}
	if path == PathLong || path == PathUndecided {
		fr.stats.KernelSkipped++
		return nil
	}
	if got != want {
		return &KernelMismatchError{Packet: fr.stats.Packets, Kernel: got, Libpcap: want, Path: path}
	}
	fr.stats.KernelChecked++
	return nil
}

// Stats returns the counts so far.
func (fr *FileRunner) Stats() FileStats { return fr.stats }
