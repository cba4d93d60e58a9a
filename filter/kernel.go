package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// testPrefix is the header the filtertest programs expect before the
// packet: the wire length in host order, padded so that even an empty
// packet meets BPF_PROG_TEST_RUN's 14-byte minimum for XDP.
const testPrefix = 16

// TestScratchSize is the scratch buffer of the test programs (a per-CPU
// map value, which the kernel limits to 32 KiB): the Scratch back end
// filters packets longer than that on their first TestScratchSize bytes,
// so Runner gives those to Matcher instead.
const TestScratchSize = 32768

// MaxDirectTestPacket is the longest packet the Direct test program can
// take: BPF_PROG_TEST_RUN puts an XDP packet in one page with headroom
// and tailroom. Use the Scratch back end (xdp.frags) for longer ones.
const MaxDirectTestPacket = 3000

// TestBed loads translated filters into the filtertest XDP programs so
// that they can be run on packets with BPF_PROG_TEST_RUN. It holds the
// parsed object and the scratch map the Scratch programs share. It needs
// CAP_BPF and CAP_NET_ADMIN (or root) and Linux 5.18 (bpf_xdp_load_bytes).
type TestBed struct {
	spec    *ebpf.CollectionSpec
	scratch *ebpf.Map
}

// NewTestBed parses the embedded test object and creates its scratch map.
func NewTestBed() (*TestBed, error) {
	spec, err := loadFiltertest()
	if err != nil {
		return nil, fmt.Errorf("load filter test object: %w", err)
	}
	ms, ok := spec.Maps["filtertest_scratch"]
	if !ok {
		return nil, errors.New("filter test object has no filtertest_scratch map")
	}
	m, err := ebpf.NewMap(ms)
	if err != nil {
		return nil, fmt.Errorf("create filter test scratch map: %w", err)
	}
	return &TestBed{spec: spec, scratch: m}, nil
}

// Close releases the scratch map. Filters loaded from the TestBed stay
// usable until they are closed.
func (tb *TestBed) Close() error {
	return tb.scratch.Close()
}

// KernelFilter is a translated filter loaded into the kernel inside an
// XDP test program.
type KernelFilter struct {
	backend Backend
	prog    *ebpf.Program
	// Instructions is the length of the translated filter.
	Instructions int
	// VerifiedInstructions is the number of instructions the verifier
	// processed for the whole test program (0 if the kernel does not say).
	VerifiedInstructions int
	buf                  []byte
}

// Load translates prog for backend, splices it into the matching test
// program and loads that into the kernel. A verifier refusal returns the
// kernel's error, with the verifier log when cilium/ebpf has one.
func (tb *TestBed) Load(prog []bpf.Instruction, backend Backend) (*KernelFilter, error) {
	insns, err := Translate(prog, Options{Backend: backend, ScratchSize: TestScratchSize})
	if err != nil {
		return nil, err
	}
	return tb.LoadTranslated(insns, backend)
}

// LoadTranslated splices insns, a translation for backend (with
// ScratchSize TestScratchSize for Scratch), into the test program and
// loads it.
func (tb *TestBed) LoadTranslated(insns asm.Instructions, backend Backend) (*KernelFilter, error) {
	name := "filtertest_direct"
	if backend == Scratch {
		name = "filtertest_scratch_prog"
	}
	return tb.load(name, insns, backend)
}

// load splices insns into the test program name and loads it.
func (tb *TestBed) load(name string, insns asm.Instructions, backend Backend) (*KernelFilter, error) {
	ps, ok := tb.spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("filter test object has no program %s", name)
	}
	ps = ps.Copy()
	if err := Splice(ps, backend.Stub(), insns); err != nil {
		return nil, err
	}
	if backend == Scratch {
		if err := ps.Instructions.AssociateMap("filtertest_scratch", tb.scratch); err != nil {
			return nil, fmt.Errorf("associate scratch map: %w", err)
		}
	}
	p, err := ebpf.NewProgram(ps)
	if err != nil {
		return nil, fmt.Errorf("load %s filter into the kernel: %w", backend, err)
	}
	kf := &KernelFilter{backend: backend, prog: p, Instructions: len(insns)}
	if info, err := p.Info(); err == nil {
		if n, ok := info.VerifiedInstructions(); ok {
			kf.VerifiedInstructions = int(n)
		}
	}
	return kf, nil
}

// Close unloads the program.
func (kf *KernelFilter) Close() error {
	return kf.prog.Close()
}

// Backend returns the back end the filter was translated for.
func (kf *KernelFilter) Backend() Backend { return kf.backend }

// input builds the test-run input for a packet in kf's reusable buffer.
func (kf *KernelFilter) input(data []byte, wireLen int) ([]byte, error) {
	if kf.backend == Direct && len(data) > MaxDirectTestPacket {
		return nil, fmt.Errorf("packet of %d bytes is longer than the direct test program takes (%d): use the scratch back end", len(data), MaxDirectTestPacket)
	}
	if wireLen < 0 {
		wireLen = len(data)
	}
	var prefix [testPrefix]byte
	kf.buf = append(kf.buf[:0], prefix[:]...)
	binary.NativeEndian.PutUint32(kf.buf, uint32(wireLen))
	kf.buf = append(kf.buf, data...)
	return kf.buf, nil
}

// Run runs the filter once on a packet (data: the captured bytes; wireLen:
// the length on the wire, `len`, which files may give as less than
// len(data)) with BPF_PROG_TEST_RUN and returns the filter's return value:
// non-zero means match, Undecided that Matcher must decide.
func (kf *KernelFilter) Run(data []byte, wireLen int) (uint32, error) {
	in, err := kf.input(data, wireLen)
	if err != nil {
		return 0, err
	}
	ret, err := kf.prog.Run(&ebpf.RunOptions{Data: in})
	if err != nil {
		return 0, fmt.Errorf("test-run %s filter: %w", kf.backend, err)
	}
	return ret, nil
}

// Benchmark runs the filter repeat times on one packet inside the kernel
// and returns the mean time per run, as the kernel measures it (the
// program's run time plus the test-run loop, without the syscall).
func (kf *KernelFilter) Benchmark(data []byte, wireLen int, repeat int) (uint32, time.Duration, error) {
	in, err := kf.input(data, wireLen)
	if err != nil {
		return 0, 0, err
	}
	ret, d, err := kf.prog.Benchmark(in, repeat, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("benchmark %s filter: %w", kf.backend, err)
	}
	return ret, d, nil
}
