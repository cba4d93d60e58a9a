package hook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/perfring"
)

// RingOptions configure the transport shared by all hooks of a session.
type RingOptions struct {
	// Size is the total buffer size in bytes (default 8 MiB). A BPF ring
	// buffer is rounded up to a power of two of pages; a perf buffer gets
	// Size divided by the number of CPUs per CPU (at least 64 KiB).
	Size int
	// Perf selects the perf event array instead of the BPF ring buffer.
	// NewRing also picks perf when the kernel has no ring buffer.
	Perf bool
	// WakeupBytes: the kernel wakes the reader once this much data is
	// pending (default min(Size/8, 1 MiB)); the reader also polls every
	// PollInterval.
	WakeupBytes int
	// PollInterval is how long the reader waits for records the kernel did
	// not wake it for (default 50 ms).
	PollInterval time.Duration
	// MaxHooks is the number of hook indexes the statistics map holds
	// (default 64).
	MaxHooks int
	// Notices receives one-line notices meant for the user, such as the
	// switch to userspace filtering, without a prefix (nil: discarded).
	Notices io.Writer
	// Compile compiles the filters of the programs Load loads for this
	// ring (nil: filter.Compile, in this process). A command line tool
	// runs it where a signal can end it.
	Compile filter.CompileFunc
}

// Ring is the transport of one capture session: the ring buffer (or perf
// event array), the statistics map and the scratch records, created once
// and shared by every program loaded with Load, plus the reader. Close
// it after the programs that write to it are detached.
type Ring struct {
	opts  RingOptions
	ring  *ebpf.Map
	perf  *ebpf.Map
	stats *ebpf.Map
	// statsMem maps stats into our memory, so counters are read without
	// bpf() calls (which old kernels refuse after -Z dropped privileges).
	statsMem *ebpf.Memory
	ncpu     int
	scratch  *ebpf.Map
	nest     *ebpf.Map
	owners   *ebpf.Map
	reader   *perfring.Reader

	// clock converts the records' timestamps, measured at NewRing.
	clock Clock

	mu          sync.Mutex
	noticeGiven bool
	maxHooks    int

	// btfCache decodes the kernel's BTF once for every program Load
	// loads for this ring (CO-RE relocations read it).
	btfCache *btf.Cache
}

// NewRing creates the shared maps from the map definitions in spec (any
// object that includes capture.h) and opens the reader.
func NewRing(spec *ebpf.CollectionSpec, opts RingOptions) (*Ring, error) {
	if opts.Size <= 0 {
		opts.Size = 8 << 20
	}
	if opts.MaxHooks <= 0 {
		opts.MaxHooks = defaultMaxHook
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	for _, name := range []string{RingMap, PerfMap, StatsMap, ScratchMap, NestMap, OwnersMap} {
		if spec.Maps[name] == nil {
			return nil, fmt.Errorf("create capture ring: object has no map %s: does it include capture.h?", name)
		}
	}
	if err := checkCaptureABI(spec); err != nil {
		return nil, fmt.Errorf("create capture ring: %w", err)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("create capture ring: %w", err)
	}
	r := &Ring{opts: opts, maxHooks: opts.MaxHooks, btfCache: btf.NewCache()}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()

	page := os.Getpagesize()
	if !opts.Perf {
		rs := spec.Maps[RingMap].Copy()
		rs.MaxEntries = uint32(roundPow2(opts.Size, page))
		r.ring, err = ebpf.NewMap(rs)
		switch {
		case errors.Is(err, ebpf.ErrNotSupported):
			// No BPF ring buffer (before 5.8): use the perf buffer.
			opts.Perf = true
			r.opts.Perf = true
			if opts.Notices != nil {
				fmt.Fprintln(opts.Notices, "this kernel has no BPF ring buffer; using the perf buffer")
			}
		case err != nil:
			return nil, wrapPerm("create ring buffer map", err)
		}
	}
	if opts.Perf {
		// The programs still reference bpfcap_ring, but with
		// BPFCAP_CFG_PERF set every use of it is dead code the verifier
		// skips; a small array stands in, so perf works on kernels
		// without ring buffers.
		if r.ring, err = ebpf.NewMap(ringPlaceholder()); err != nil {
			return nil, wrapPerm("create ring placeholder map", err)
		}
	}
	ps := spec.Maps[PerfMap].Copy()
	ps.MaxEntries = uint32(ncpu)
	if r.perf, err = ebpf.NewMap(ps); err != nil {
		return nil, wrapPerm("create perf event array", err)
	}
	ss := spec.Maps[StatsMap].Copy()
	ss.MaxEntries = uint32(ncpu * opts.MaxHooks * int(NumStats))
	if r.stats, err = ebpf.NewMap(ss); err != nil {
		return nil, wrapPerm("create statistics map", err)
	}
	if r.statsMem, err = r.stats.Memory(); err != nil {
		return nil, fmt.Errorf("map statistics into memory: %w (the kernel needs BPF_F_MMAPABLE, 5.5+)", err)
	}
	r.ncpu = ncpu
	sc := spec.Maps[ScratchMap].Copy()
	sc.MaxEntries = uint32(ncpu * nestLevels)
	if r.scratch, err = ebpf.NewMap(sc); err != nil {
		return nil, wrapPerm("create scratch map", err)
	}
	if r.nest, err = ebpf.NewMap(spec.Maps[NestMap].Copy()); err != nil {
		return nil, wrapPerm("create nesting map", err)
	}
	if r.owners, err = ebpf.NewMap(spec.Maps[OwnersMap].Copy()); err != nil {
		return nil, wrapPerm("create socket owner map", err)
	}

	ropts := perfring.Options{PollInterval: opts.PollInterval}
	src := r.ring
	if opts.Perf {
		src = r.perf
		per := max(opts.Size/ncpu, 64<<10)
		ropts.PerCPUBuffer = per
		ropts.Watermark = min(per/4, 1<<20)
	}
	if r.reader, err = perfring.NewReader(src, ropts); err != nil {
		return nil, wrapPerm("open ring reader", err)
	}
	r.clock = NewClock()
	ok = true
	return r, nil
}

// errStaleObject is wrapped by errors for objects compiled against an
// older bpf/capture.h than this package expects.
var errStaleObject = errors.New("object built with an older bpf/capture.h: regenerate it (make generate)")

// checkCaptureABI checks that spec was compiled against the capture.h
// this package reads (stats map layout, config size).
func checkCaptureABI(spec *ebpf.CollectionSpec) error {
	if ms := spec.Maps[StatsMap]; ms == nil || ms.Type != ebpf.Array || ms.Flags&unix.BPF_F_MMAPABLE == 0 || ms.ValueSize != 8 {
		return fmt.Errorf("map %s is not an mmapable array of counters: %w", StatsMap, errStaleObject)
	}
	if v := spec.Variables[ConfigVar]; v == nil || v.Size() != uint32(binary.Size(config{})) {
		return fmt.Errorf("%s has the wrong size: %w", ConfigVar, errStaleObject)
	}
	return nil
}

// ringPlaceholder is the map that stands in for bpfcap_ring in perf mode.
func ringPlaceholder() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: RingMap, Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}
}

// roundPow2 rounds n up to a power of two that is at least min.
func roundPow2(n, min int) int {
	v := min
	for v < n {
		v <<= 1
	}
	return v
}

// WallTime converts a bpf_ktime_get_ns() timestamp to wall-clock time.
func (r *Ring) WallTime(mono uint64) time.Time {
	return r.clock.WallTime(mono)
}

// Perf reports whether the ring is a perf event array.
func (r *Ring) Perf() bool { return r.opts.Perf }

// Reader returns the ring's record reader.
func (r *Ring) Reader() *perfring.Reader { return r.reader }

// MaxHooks is the number of hook indexes the statistics map holds.
func (r *Ring) MaxHooks() int { return r.maxHooks }

// wakeupBytes is the pending-data threshold for forced ringbuf wake-ups.
func (r *Ring) wakeupBytes() uint32 {
	if r.opts.Perf {
		return 0
	}
	if r.opts.WakeupBytes > 0 {
		return uint32(r.opts.WakeupBytes)
	}
	return uint32(min(int(r.ring.MaxEntries())/8, 1<<20))
}

// replacements returns the maps every program of the session shares.
func (r *Ring) replacements() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		RingMap:    r.ring,
		PerfMap:    r.perf,
		StatsMap:   r.stats,
		ScratchMap: r.scratch,
		NestMap:    r.nest,
		OwnersMap:  r.owners,
	}
}

// notice prints msg to RingOptions.Notices once per ring.
func (r *Ring) notice(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noticeGiven || r.opts.Notices == nil {
		return
	}
	r.noticeGiven = true
	fmt.Fprintln(r.opts.Notices, msg)
}

// HookStats returns the kernel's counters for hook, summed over CPUs. It
// reads the mmapped map and makes no bpf() call.
func (r *Ring) HookStats(hook int) ([NumStats]uint64, error) {
	var out [NumStats]uint64
	if hook < 0 || hook >= r.maxHooks {
		return out, fmt.Errorf("read statistics: hook %d out of range 0..%d", hook, r.maxHooks-1)
	}
	if r.statsMem == nil {
		return out, fmt.Errorf("read statistics of hook %d: %w", hook, os.ErrClosed)
	}
	var row [8 * NumStats]byte
	for cpu := range r.ncpu {
		off := int64((cpu*r.maxHooks + hook) * int(NumStats) * 8)
		if _, err := r.statsMem.ReadAt(row[:], off); err != nil {
			return out, fmt.Errorf("read statistics of hook %d: %w", hook, err)
		}
		for st := range NumStats {
			out[st] += binary.NativeEndian.Uint64(row[8*st:])
		}
	}
	return out, nil
}

// hookStat returns one counter of hook, summed over CPUs.
func (r *Ring) hookStat(hook int, st Stat) (uint64, error) {
	all, err := r.HookStats(hook)
	return all[st], err
}

// Close closes the reader and the maps. Programs still attached keep the
// maps alive in the kernel but nothing reads them any more.
func (r *Ring) Close() error {
	var errs []error
	if r.reader != nil {
		errs = append(errs, r.reader.Close())
		r.reader = nil
	}
	r.statsMem = nil // unmapped when the map is closed and collected
	for _, m := range []**ebpf.Map{&r.ring, &r.perf, &r.stats, &r.scratch, &r.nest, &r.owners} {
		if *m != nil {
			errs = append(errs, (*m).Close())
			*m = nil
		}
	}
	return errors.Join(errs...)
}
