//go:build dpdk

package dpdk

// #include <errno.h>
// #include <stdlib.h>
// #include "dpdkcap.h"
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/pcapng"
)

// OpsReport says how the mempool ops tables were aligned (DPDK bug
// 1073).
type OpsReport struct {
	// Ops is the mempool ops our pool uses, e.g. "ring_mp_mc".
	Ops string
	// OurIndex and PrimaryIndex are its index in our table before
	// aligning and in the primary's (-1: not found).
	OurIndex, PrimaryIndex int
	// PrimaryPools is how many of the primary's packet pools showed its
	// index; Ambiguous is set when they disagreed.
	PrimaryPools int
	Ambiguous    bool
	// Swapped says our table was reordered to match.
	Swapped bool
}

// Capture is a running pdump capture of one or more ports. It implements
// the bpfcap.Source interface.
type Capture struct {
	p      *Process
	c      *C.struct_bc_capture
	opts   CaptureOptions
	ports  []Port
	ifaces []pcapng.Interface
	// match filters in userspace when DPDK could not take the filter,
	// with libpcap's semantics (`len` is the wire length, protochain's
	// backward jumps), like every other source's fallback.
	match    *filter.Matcher
	fallback string

	base         []C.struct_rte_pdump_stats
	captured     []atomic.Uint64
	userFiltered []atomic.Uint64
	tsFixed      atomic.Uint64
	tsGuessed    atomic.Uint64

	slot        *os.File // flock on the slot whose ring and pool we use
	mu          sync.Mutex
	enabled     bool
	leak        bool  // pdump may still use the ring and pool: never free them
	disableErr  error // why pdump could not be stopped
	closed      bool
	final       []PortStats
	primaryGone atomic.Bool
}

// Open starts capturing opts.Ports into a new ring and mempool. The
// capture runs in the primary from now on; call Run to write packets and
// Close to stop.
//
// Errors: ErrNoPort for a name the primary does not have; a bad filter
// carries libpcap's message.
func (p *Process) Open(opts CaptureOptions) (*Capture, error) {
	if len(opts.Ports) == 0 {
		return nil, errors.New("capture: no DPDK port given: name one (see `bpfcap dpdk list`)")
	}
	if opts.Direction == 0 {
		opts.Direction = Both
	}
	if opts.SnapLen <= 0 {
		opts.SnapLen = DefaultSnapLen
	}
	if opts.RingSize <= 0 {
		opts.RingSize = DefaultRingSize
	}
	if opts.RingSize&(opts.RingSize-1) != 0 {
		return nil, fmt.Errorf("ring size %d: must be a power of two", opts.RingSize)
	}
	all, err := p.Ports()
	if err != nil {
		return nil, err
	}
	cp := &Capture{p: p, opts: opts}
	for _, name := range opts.Ports {
		port, err := FindPort(all, name)
		if err != nil {
			return nil, err
		}
		for _, q := range cp.ports {
			if q.ID == port.ID {
				return nil, fmt.Errorf("port %q given twice", name)
			}
		}
		cp.ports = append(cp.ports, port)
	}
	var prog []byte
	if opts.Filter != "" {
		if prog, cp.match, err = compileFilter(opts.Filter, opts.SnapLen); err != nil {
			return nil, err
		}
	}
	for _, port := range cp.ports {
		cp.ifaces = append(cp.ifaces, portInterface(port, opts))
	}
	cp.captured = make([]atomic.Uint64, len(cp.ports))
	cp.userFiltered = make([]atomic.Uint64, len(cp.ports))
	cp.base = make([]C.struct_rte_pdump_stats, len(cp.ports))

	if err := p.do(func() error { return cp.start(prog) }); err != nil {
		return nil, err
	}
	return cp, nil
}

func portInterface(port Port, opts CaptureOptions) pcapng.Interface {
	desc := fmt.Sprintf("DPDK port %d (%s), driver %s, %s", port.ID, port.Name, port.Driver, opts.Direction)
	if port.IfName != "" {
		desc += ", kernel interface " + port.IfName
	}
	return pcapng.Interface{
		Name:        port.Name,
		Description: desc,
		LinkType:    pcapng.LinkTypeEthernet,
		SnapLen:     uint32(opts.SnapLen),
		Filter:      opts.Filter,
		MAC:         port.MAC,
		Speed:       port.Speed,
	}
}

// start runs on the EAL thread: align ops, make ring and pool, convert
// the filter, enable pdump on every port.
func (cp *Capture) start(prog []byte) error {
	if !cp.p.opsAligned && !cp.opts.NoAlignOps {
		if err := cp.p.alignOps(); err != nil {
			return err
		}
	}
	tag, err := cp.claimSlot()
	if err != nil {
		return err
	}
	ctag := C.CString(tag)
	defer C.free(unsafe.Pointer(ctag))
	// Enough mbufs for a full ring plus a burst in flight on each side.
	pool := cp.opts.RingSize + 4*C.BC_BURST - 1
	var cerr C.int
	cp.c = C.bc_capture_create(ctag, C.uint32_t(cp.opts.SnapLen), C.uint32_t(cp.opts.RingSize), C.uint32_t(pool), &cerr)
	if cp.c == nil {
		cp.releaseSlot()
		return fmt.Errorf("create capture ring and mempool (%d packets): %w: %w", cp.opts.RingSize, ErrNoHugepages, syscall.Errno(-cerr))
	}
	for i, port := range cp.ports {
		cp.c.port_index[port.ID] = C.uint16_t(i)
	}
	if prog != nil {
		cprog := C.CBytes(prog)
		rc := C.bc_capture_set_filter(cp.c, cprog, C.uint32_t(len(prog)/8))
		C.free(cprog)
		if rc < 0 {
			cp.fallback = fmt.Sprintf("DPDK cannot run filter %q (rte_bpf_convert: %v): capturing unfiltered and filtering in userspace", cp.opts.Filter, syscall.Errno(-rc))
		}
	}
	for i, port := range cp.ports {
		rc := cp.enable(i, port)
		if rc < 0 {
			for _, q := range cp.ports[:i] {
				C.bc_capture_disable(C.uint16_t(q.ID), C.uint32_t(cp.opts.Direction))
			}
			if i > 0 {
				time.Sleep(disableGrace)
			}
			C.bc_capture_free(cp.c, 1)
			cp.c = nil
			cp.releaseSlot()
			if rc == -C.EEXIST {
				return fmt.Errorf("enable capture on port %s: %w (dpdk-dumpcap, another bpfcap, or one that was killed and left it enabled): %w", port.Name, ErrPortCaptured, syscall.Errno(-rc))
			}
			return fmt.Errorf("enable capture on port %s (rte_pdump_enable_bpf): %w: does the primary call rte_pdump_init()?", port.Name, syscall.Errno(-rc))
		}
	}
	if cp.c.prm == nil {
		cp.fallbackFilterOnly()
	}
	cp.enabled = true
	return nil
}

// alignOps aligns our mempool ops table with the primary's (DPDK bug
// 1073) and keeps the report. Runs on the EAL thread.
func (p *Process) alignOps() error {
	ctag := C.CString("bpfcap")
	var rep C.struct_bc_ops_report
	rc := C.bc_align_ops(ctag, &rep)
	C.free(unsafe.Pointer(ctag))
	p.opsReport = OpsReport{
		Ops: C.GoString(&rep.ops_name[0]), OurIndex: int(rep.our_index), PrimaryIndex: int(rep.primary_index),
		PrimaryPools: int(rep.primary_pools), Ambiguous: rep.ambiguous != 0, Swapped: rep.swapped != 0,
	}
	if rc < 0 {
		return fmt.Errorf("align mempool ops %q with the primary's (DPDK bug 1073): %w", p.opsReport.Ops, syscall.Errno(-rc))
	}
	p.opsAligned = true
	return nil
}

// enable enables pdump on port, the i-th of the capture, replacing a
// capture already there with Takeover, and dropping the filter for the
// userspace fallback when the primary refuses it. It returns pdump's
// code. Runs on the EAL thread.
func (cp *Capture) enable(i int, port Port) C.int {
	if C.bc_stats(C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction), &cp.base[i]) == 0 {
		// Exact counters: pdump zeroes them when it enables us.
		cp.base[i] = C.struct_rte_pdump_stats{}
	}
	rc := C.bc_capture_enable(cp.c, C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction), C.uint32_t(cp.opts.SnapLen))
	if rc == -C.EEXIST && cp.opts.Takeover {
		C.bc_capture_disable(C.uint16_t(port.ID), C.RTE_PDUMP_FLAG_RXTX)
		time.Sleep(disableGrace)
		rc = C.bc_capture_enable(cp.c, C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction), C.uint32_t(cp.opts.SnapLen))
	}
	if (rc == -C.EINVAL || rc == -C.ENOTSUP) && cp.c.prm != nil && cp.match != nil && i == 0 {
		// The primary refused the converted program (rte_bpf_load):
		// fall back to filtering here.
		C.bc_capture_drop_filter(cp.c)
		cp.fallback = fmt.Sprintf("the primary refused filter %q (%v): capturing unfiltered and filtering in userspace", cp.opts.Filter, syscall.Errno(-rc))
		rc = C.bc_capture_enable(cp.c, C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction), C.uint32_t(cp.opts.SnapLen))
	}
	return rc
}

// fixTime is bc_drain's timestamp correction, for tests: how is 0 (ts
// kept), 1 (whole TSC wraps removed) or 2 (replaced by now).
func fixTime(wrapNs, ts, now uint64) (fixed uint64, how int) {
	var h C.int
	fixed = uint64(C.bc_fix_time_with(C.uint64_t(wrapNs), C.uint64_t(ts), C.uint64_t(now), &h))
	return fixed, int(h)
}

// disableGrace is how long the primary may still be inside a capture
// callback after rte_pdump_disable returns: DPDK 22.11 removes the
// callbacks without waiting for bursts in progress, and a primary crashed
// when the ring and pool were freed 200 ms later on a loaded machine.
const disableGrace = 500 * time.Millisecond

// Interfaces describes the ports, one per IDB, in the order given.
func (cp *Capture) Interfaces() []pcapng.Interface { return cp.ifaces }

// Notes returns what a -v user wants to know about this capture: how the
// mempool ops were aligned, filter fallback, corrected timestamps.
func (cp *Capture) Notes() []string {
	r := cp.p.opsReport
	var notes []string
	if r.Ops != "" {
		n := fmt.Sprintf("mempool ops %q: index %d here, %d in the primary (%d packet pools)", r.Ops, r.OurIndex, r.PrimaryIndex, r.PrimaryPools)
		if r.Swapped {
			n += "; aligned (DPDK bug 1073)"
		}
		if r.Ambiguous {
			n += "; primary pools disagree"
		}
		notes = append(notes, n)
	}
	if cp.fallback != "" {
		notes = append(notes, cp.fallback)
	}
	if n := cp.tsFixed.Load(); n > 0 {
		notes = append(notes, fmt.Sprintf("%d timestamps corrected for DPDK's TSC wrap (2^64/tsc_hz s)", n))
	}
	if n := cp.tsGuessed.Load(); n > 0 {
		notes = append(notes, fmt.Sprintf("%d timestamps unusable, replaced by the time bpfcap read the packet", n))
	}
	return notes
}

// FilterFallback says, when not empty, that the filter runs in userspace
// and why.
func (cp *Capture) FilterFallback() string { return cp.fallback }

// PrimaryExited reports whether Run ended because the primary went away.
func (cp *Capture) PrimaryExited() bool { return cp.primaryGone.Load() }

// Run writes packets to sink until ctx is done, the sink fails or stops
// the capture, or the primary exits. On ctx it stops pdump, waits for the
// primary's callbacks to finish, and writes what is left in the ring.
// When the primary exits it writes what is left and returns nil
// (PrimaryExited then reports true). It returns an ErrAllDropped error
// when the primary cannot copy a single packet into our mempool.
func (cp *Capture) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	cp.mu.Lock()
	if cp.closed || cp.c == nil {
		cp.mu.Unlock()
		return errors.New("run DPDK capture: already closed")
	}
	cp.mu.Unlock()
	return cp.p.do(func() error { return cp.loop(ctx, sink) })
}

// disable stops pdump on every port (once) and waits for the primary's
// callbacks to let go of the ring. Runs on the EAL thread.
func (cp *Capture) disable() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if !cp.enabled {
		return
	}
	cp.enabled = false
	if cp.primaryGone.Load() || !cp.p.PrimaryAlive() {
		cp.primaryGone.Store(true)
		return
	}
	var failed []string
	for _, port := range cp.ports {
		if rc := C.bc_capture_disable(C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction)); rc < 0 {
			failed = append(failed, fmt.Sprintf("%s: %v", port.Name, syscall.Errno(-rc)))
		}
	}
	time.Sleep(disableGrace)
	// Freeing the ring and pool while the primary still copies into them
	// crashes the primary: free them only once pdump is off for sure, that
	// is, once its counters stand still.
	if len(failed) == 0 && cp.countersSettle() {
		return
	}
	cp.leak = true
	if len(failed) > 0 {
		cp.disableErr = fmt.Errorf("stop capture (rte_pdump_disable) on %s: its ring and mempool stay allocated in the primary's hugepages", strings.Join(failed, ", "))
	} else {
		cp.disableErr = errors.New("stop capture: the primary still copies packets after rte_pdump_disable: its ring and mempool stay allocated in the primary's hugepages")
	}
}

// countersSettle reports whether pdump's counters of our ports stand
// still for 150 ms, within two seconds.
func (cp *Capture) countersSettle() bool {
	prev, still := cp.counterSum(), 0
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		cur := cp.counterSum()
		if cur != prev {
			prev, still = cur, 0
			continue
		}
		if still++; still == 3 {
			return true
		}
	}
	return false
}

// counterSum sums pdump's counters of our ports, to see them move.
func (cp *Capture) counterSum() (t uint64) {
	for i, port := range cp.ports {
		var st C.struct_rte_pdump_stats
		C.bc_stats(C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction), &st)
		t += uint64(st.accepted+st.filtered+st.nombuf+st.ringfull) + uint64(i)
	}
	return t
}

// Close stops the capture, returns the packets still in the ring to the
// pool, frees the filter and releases the slot; the ring and pool stay
// for the next capture of the slot (see claimSlot). Stats stay readable.
// Safe to call more than once.
func (cp *Capture) Close() error {
	cp.mu.Lock()
	if cp.closed {
		cp.mu.Unlock()
		return nil
	}
	cp.mu.Unlock()
	err := cp.p.do(func() error {
		cp.disable()
		cp.mu.Lock()
		defer cp.mu.Unlock()
		cp.final = cp.portStatsLocked()
		cp.closed = true
		if cp.c != nil && !cp.primaryGone.Load() && !cp.leak {
			// Keep the ring and pool for the next capture of this slot.
			C.bc_capture_free(cp.c, 1)
		}
		cp.c = nil
		cp.releaseSlot()
		return nil
	})
	if errors.Is(err, errClosed) {
		return fmt.Errorf("close DPDK capture of %s: the process detached first", strings.Join(cp.opts.Ports, ","))
	}
	if err != nil {
		return err
	}
	return cp.disableErr
}
