//go:build dpdk

package dpdk

// #include <stdlib.h>
// #include "dpdkcap.h"
import "C"

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// DefaultFilePrefix is the file prefix DPDK applications use when they
// are not given --file-prefix.
const DefaultFilePrefix = "rte"

// Config says which primary to attach to and how.
type Config struct {
	// FilePrefix is the primary's --file-prefix (DefaultFilePrefix if
	// empty).
	FilePrefix string
	// RuntimeDir is where DPDK keeps its runtime files
	// (/var/run/dpdk when empty, as for root).
	RuntimeDir string
	// Lcores is the EAL --lcores value for this process. The lcore id
	// must not be one the primary uses; the default is the highest lcore
	// id, on every CPU this process may run on.
	Lcores string
	// NoPCI stops the EAL from scanning the PCI bus (--no-pci). A
	// secondary must probe the primary's PCI devices to use their ports,
	// so only primaries with virtual devices alone can do without.
	NoPCI bool
	// EALArgs are passed to rte_eal_init after the others.
	EALArgs []string
}

// Process is this process attached to a DPDK primary as a secondary.
// DPDK calls that care about the calling thread run on one OS thread,
// locked for the life of the Process.
type Process struct {
	cfg    Config
	calls  chan func()
	done   chan struct{}
	closed atomic.Bool
	// configPath is the primary's runtime config file, whose lock shows
	// whether the primary still runs.
	configPath string
	// opsAligned is set once the mempool ops tables were aligned.
	opsAligned bool
	opsReport  OpsReport
}

// attachOnce guards the EAL: DPDK initialises it once per process and
// cannot do it again, even after rte_eal_cleanup. This one global mirrors
// DPDK's own process-wide state.
var attachOnce sync.Mutex
var attachedBefore bool

// Attach joins the primary named by cfg as a DPDK secondary process.
//
// It checks first that the primary runs (ErrNoPrimary) and runs the DPDK
// version bpfcap was built against (ErrVersionMismatch), so those cases
// get a clear message instead of EAL's. A process can attach only once
// (ErrAttached). Needs root (hugepages, /var/run/dpdk).
func Attach(cfg Config) (*Process, error) {
	if cfg.FilePrefix == "" {
		cfg.FilePrefix = DefaultFilePrefix
	}
	if cfg.RuntimeDir == "" {
		cfg.RuntimeDir = "/var/run/dpdk"
	}
	if strings.ContainsAny(cfg.FilePrefix, "/ ") {
		return nil, fmt.Errorf("file prefix %q: must not contain '/' or spaces", cfg.FilePrefix)
	}
	configPath := filepath.Join(cfg.RuntimeDir, cfg.FilePrefix, "config")
	if err := checkPrimary(configPath, cfg.FilePrefix); err != nil {
		return nil, err
	}

	attachOnce.Lock()
	defer attachOnce.Unlock()
	if attachedBefore {
		return nil, ErrAttached
	}
	attachedBefore = true

	p := &Process{cfg: cfg, calls: make(chan func()), done: make(chan struct{}), configPath: configPath}
	started := make(chan error, 1)
	go p.ealThread(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// checkPrimary reads the primary's runtime config file: it must exist,
// be locked by a live process, and carry our DPDK version.
func checkPrimary(path, prefix string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var pr C.struct_bc_primary
	C.bc_check_primary(cpath, &pr)
	switch {
	case pr.exists == 0:
		return fmt.Errorf("file prefix %q (%s not found): %w", prefix, path, ErrNoPrimary)
	case pr.alive == 0:
		return fmt.Errorf("file prefix %q (%s is left over from a process that exited): %w", prefix, path, ErrNoPrimary)
	case uint32(pr.magic) != uint32(C.bc_magic()) || uint32(pr.version) != uint32(C.bc_version()):
		return fmt.Errorf("%w: the primary with file prefix %q runs DPDK %s, bpfcap was built against DPDK %s: rebuild bpfcap (make build-dpdk) against the primary's DPDK version",
			ErrVersionMismatch, prefix, versionString(uint32(pr.magic), uint32(pr.version)), versionString(uint32(C.bc_magic()), uint32(C.bc_version())))
	}
	return nil
}

// versionString formats an RTE_VERSION number (year.month.minor).
func versionString(magic, v uint32) string {
	if magic != uint32(C.bc_magic()) {
		return "of an unknown (much older or newer) version"
	}
	return fmt.Sprintf("%d.%02d.%d", v>>24, (v>>16)&0xff, (v>>8)&0xff)
}

// ealThread runs rte_eal_init on a locked OS thread and then every call
// submitted with do, until Close.
func (p *Process) ealThread(started chan<- error) {
	// Never unlocked: the EAL pins this thread's CPU affinity and keeps
	// per-thread lcore state, so no other goroutine may run on it. The
	// thread ends when the goroutine returns.
	runtime.LockOSThread()
	defer close(p.done)
	if err := p.initEAL(); err != nil {
		started <- err
		return
	}
	started <- nil
	for f := range p.calls {
		f()
	}
}

func (p *Process) initEAL() error {
	args := []string{"bpfcap", "--proc-type=secondary", "--file-prefix=" + p.cfg.FilePrefix,
		"--lcores=" + p.lcores(), "--log-level=notice"}
	if p.cfg.NoPCI {
		args = append(args, "--no-pci")
	}
	args = append(args, p.cfg.EALArgs...)
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = C.CString(a)
	}
	// rte_eal_init keeps pointers into argv: never free them.
	cargv := (**C.char)(C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(argv[0]))))
	copy(unsafe.Slice(cargv, len(argv)), argv)
	if rc := C.bc_log_to_memory(); rc < 0 {
		return fmt.Errorf("capture DPDK log: %w", syscall.Errno(-rc))
	}
	if rc := C.bc_eal_init(C.int(len(args)), cargv); rc < 0 {
		log := lastLines(C.GoString(C.bc_log_text()), 4)
		err := fmt.Errorf("attach to DPDK primary %q as a secondary process (rte_eal_init %s): %w", p.cfg.FilePrefix, strings.Join(args[1:], " "), syscall.Errno(-rc))
		if log != "" {
			err = fmt.Errorf("%w; DPDK said: %s", err, log)
		}
		return err
	}
	C.bc_log_to_stderr()
	return nil
}

// lcores picks the --lcores value: the configured one, or the highest
// lcore id on all CPUs we may use.
func (p *Process) lcores() string {
	if p.cfg.Lcores != "" {
		return p.cfg.Lcores
	}
	var set [16]uint64
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, uintptr(len(set)*8), uintptr(unsafe.Pointer(&set[0])))
	var cpus []string
	if errno == 0 {
		for i := 0; i < len(set)*64; i++ {
			if set[i/64]&(1<<(i%64)) != 0 {
				cpus = append(cpus, fmt.Sprint(i))
			}
		}
	}
	if len(cpus) == 0 {
		cpus = []string{"0"}
	}
	return fmt.Sprintf("%d@(%s)", C.RTE_MAX_LCORE-1, strings.Join(cpus, ","))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// do runs f on the EAL thread, waits for it and returns its error
// (errClosed when the thread has ended).
func (p *Process) do(f func() error) error {
	if p.closed.Load() {
		return errClosed
	}
	ch := make(chan error, 1)
	select {
	case p.calls <- func() { ch <- f() }:
	case <-p.done:
		return errClosed
	}
	return <-ch
}

var errClosed = errors.New("DPDK process already closed")

// PrimaryAlive reports whether the primary still runs.
func (p *Process) PrimaryAlive() bool {
	cpath := C.CString(p.configPath)
	defer C.free(unsafe.Pointer(cpath))
	var pr C.struct_bc_primary
	C.bc_check_primary(cpath, &pr)
	return pr.alive != 0
}

// FilePrefix is the primary's file prefix.
func (p *Process) FilePrefix() string { return p.cfg.FilePrefix }

// Close detaches from the primary (rte_eal_cleanup) and ends the EAL
// thread. Close captures first. Safe to call more than once.
func (p *Process) Close() error {
	if p.closed.Load() {
		return nil
	}
	var err error
	if p.PrimaryAlive() {
		err = p.do(p.cleanup)
	}
	p.closed.Store(true)
	close(p.calls)
	<-p.done
	if errors.Is(err, errClosed) {
		return nil // the EAL thread had ended: nothing to detach
	}
	return err
}

// cleanup detaches from the primary (rte_eal_cleanup), on the EAL thread.
func (p *Process) cleanup() error {
	if rc := C.bc_eal_cleanup(); rc < 0 {
		return fmt.Errorf("detach from DPDK primary %q: %w", p.cfg.FilePrefix, syscall.Errno(-rc))
	}
	return nil
}
