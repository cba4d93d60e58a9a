package probe

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/perfring"
)

// Maps of bpf/capture.h's packet-tracking block, shared by a session's
// programs.
const (
	trackedMap  = "bpfcap_tracked"
	trackSeqMap = "bpfcap_track_seq"
	// trackCountMap bounds the entries of trackedMap from above: while
	// it is 0 the programs skip their lookups and deletes.
	trackCountMap = "bpfcap_track_count"
	stacksMap     = "bpfcap_stacks"
	trackCfgVar   = "bpfcap_track_cfg"
)

// freeTracepoints are the tracepoints where a tracked skb is forgotten:
// kfree_skb and consume_skb fire when the kernel frees an skb for good;
// skb_copy_datagram_iovec when a reader takes its data, after which TCP
// frees it where no tracepoint fires (__kfree_skb, the deferred free).
// The last one forgets too early for sockets that free the skb after the
// copy (UDP, packet sockets: consume_skb follows), so it serves only
// where the free functions cannot be hooked (see tracking.frees).
var freeTracepoints = []string{"kfree_skb", "consume_skb", "skb_copy_datagram_iovec"}

// copyTracepoint is the free tracepoint that is only a stand-in for the
// free functions.
const copyTracepoint = "skb_copy_datagram_iovec"

// freeFunctions end every free of an skb, including those no tracepoint
// reports (__kfree_skb, GRO's stolen heads): where fentry works, tracking
// forgets the skb there, so that a leaked entry cannot make a new skb at
// the same address look tracked. The first one is the one every free
// passes; the second only exists on kernels with a NAPI skb cache.
var freeFunctions = []string{"kfree_skbmem", "napi_skb_cache_put"}

// cloneFunctions make a new skb from one (skb, gfp) and return it: a
// tracked skb's clone or copy is tracked too, with its own id.
var cloneFunctions = []string{"skb_clone", "skb_copy"}

// trackConfig is struct bpfcap_track_config in bpf/capture.h.
type trackConfig = probeBpfcapTrackConfig

// tracking is a session's packet tracking and stack recording: the maps
// its programs share and the names of what they record.
type tracking struct {
	track, stack bool
	maps         map[string]*ebpf.Map
	depth        int // frames per stack (BPFCAP_STACK_DEPTH)
	// cloneErr is why clones are not tracked (nil when they are);
	// freeErr why frees without a tracepoint are not seen.
	cloneErr, freeErr error
	// freeHooked: the free functions' entry (at least kfree_skbmem, the
	// one every free passes) forgets freed skbs.
	freeHooked bool

	mu     sync.Mutex
	syms   *kernelText
	symErr error
	loaded bool
	stacks map[int32]string
}

// newTracking creates the shared maps (sized to one entry each for what
// is off: every program refers to them).
func newTracking(base *ebpf.CollectionSpec, track, stack bool) (_ *tracking, err error) {
	tr := &tracking{track: track, stack: stack, maps: map[string]*ebpf.Map{}, stacks: map[int32]string{}}
	defer func() {
		if err != nil {
			tr.Close()
		}
	}()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("packet tracking: %w", err)
	}
	for _, name := range []string{trackedMap, trackSeqMap, trackCountMap, stacksMap} {
		ms := base.Maps[name]
		if ms == nil {
			return nil, fmt.Errorf("packet tracking: probe object has no map %s", name)
		}
		ms = ms.Copy()
		switch {
		case name == trackSeqMap && track:
			// 64 CPUs' worth in C: size it to the possible CPUs.
			ms.MaxEntries = ms.MaxEntries / 64 * uint32(ncpu)
		case name == stacksMap && stack:
			tr.depth = int(ms.ValueSize / 8)
		case name == trackedMap && track:
		default:
			ms.MaxEntries = 1
		}
		m, err := ebpf.NewMap(ms)
		if err != nil {
			return nil, fmt.Errorf("packet tracking: create map %s: %w", name, featureError("create map", err))
		}
		tr.maps[name] = m
	}
	return tr, nil
}

// Close closes the maps.
func (tr *tracking) Close() error {
	var errs []error
	for _, m := range tr.maps {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// trackedBound returns bpfcap_track_count: at least the number of packets
// the session's programs track.
func (tr *tracking) trackedBound() (int64, error) {
	var n int64
	if err := tr.maps[trackCountMap].Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("read %s: %w", trackCountMap, err)
	}
	return n, nil
}

// frees reports whether t is a tracepoint where the skb is freed (or,
// without the free functions hooked, where a reader took its data).
func (tr *tracking) frees(t *Target) bool {
	if t.Kind == KindKprobe || t.Kind == KindFentry || t.Kind == KindFexit {
		return false
	}
	if t.Name == copyTracepoint && tr.freeHooked {
		return false
	}
	return slices.Contains(freeTracepoints, t.Name)
}

// configure writes the packet-tracking configuration of t's program.
func (tr *tracking) configure(spec *ebpf.CollectionSpec, t *Target) error {
	cfg := trackConfig{}
	if tr.track {
		cfg.Track = 1
		if t != nil && tr.frees(t) {
			cfg.Frees = 1
		}
	}
	if tr.stack {
		cfg.Stack = 1
	}
	v := spec.Variables[trackCfgVar]
	if v == nil {
		return fmt.Errorf("probe object has no %s", trackCfgVar)
	}
	if err := v.Set(cfg); err != nil {
		return fmt.Errorf("configure packet tracking: %w", err)
	}
	return nil
}

// attachFrees attaches, before the hooks that track, the programs that
// forget an skb at the entry of the free functions (fentry). A kernel
// that refuses them leaves freeErr set: tracking then forgets at the free
// tracepoints (attachOwn).
func (tr *tracking) attachFrees(b *hook.Builder, base *ebpf.CollectionSpec) {
	if !tr.track {
		return
	}
	var errs []error
	for _, fn := range freeFunctions {
		err := tr.attachTracing(b, base, "probe_forget", ebpf.AttachTraceFEntry, fn)
		if err == nil {
			tr.freeHooked = tr.freeHooked || fn == freeFunctions[0]
			continue
		}
		errs = append(errs, fmt.Errorf("fentry:%s: %w", fn, err))
	}
	tr.freeErr = errors.Join(errs...)
}

// attachOwn attaches tracking's other programs, after the hooks: one
// forgetting freed skbs on each free tracepoint that no target captures at
// (a target there forgets them itself, after capturing), unless the free
// functions are hooked already, and one per clone function. Without a
// way to forget freed skbs tracking fails; a kernel that refuses the
// clone hooks (fexit) leaves cloneErr set and tracking goes on without
// clones.
func (tr *tracking) attachOwn(b *hook.Builder, base *ebpf.CollectionSpec, targets []*Target) error {
	if !tr.track {
		return nil
	}
	for _, tp := range freeTracepoints {
		if tr.freeHooked {
			break
		}
		if slices.ContainsFunc(targets, func(t *Target) bool { return tr.frees(t) && t.Name == tp }) {
			continue
		}
		p, err := tr.load(b, base, "probe_untrack", "")
		if err != nil {
			return fmt.Errorf("packet tracking: forget freed packets at %s: %w", tp, err)
		}
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: p.Program})
		if err != nil {
			return fmt.Errorf("packet tracking: %w", featureError("attach raw_tp:"+tp, err))
		}
		b.Detach(l)
	}
	var errs []error
	for _, fn := range cloneFunctions {
		if err := tr.attachTracing(b, base, "probe_clone", ebpf.AttachTraceFExit, fn); err != nil {
			errs = append(errs, fmt.Errorf("fexit:%s: %w", fn, err))
		}
	}
	tr.cloneErr = errors.Join(errs...)
	return nil
}

// attachTracing loads prog for the function fn and attaches it as at.
func (tr *tracking) attachTracing(b *hook.Builder, base *ebpf.CollectionSpec, prog string, at ebpf.AttachType, fn string) error {
	p, err := tr.load(b, base, prog, fn)
	if err != nil {
		return featureError("load", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: p.Program, AttachType: at})
	if err != nil {
		return featureError("attach", err)
	}
	b.Detach(l)
	return nil
}

// load loads one of tracking's own programs (attached to the function
// attachTo, for fexit) with the session's maps; b closes it.
func (tr *tracking) load(b *hook.Builder, base *ebpf.CollectionSpec, prog, attachTo string) (*hook.Program, error) {
	spec := base.Copy()
	if attachTo != "" {
		spec.Programs[prog].AttachTo = attachTo
	}
	if err := tr.configure(spec, nil); err != nil {
		return nil, err
	}
	p, err := hook.Load(spec, b.Ring(), hook.Options{Program: prog, Maps: tr.maps})
	if err != nil {
		return nil, err
	}
	b.OnClose(p)
	return p, nil
}

// readSymbols reads the kernel's symbols now when records will need them
// (stacks, a hook with a drop location): after -Z drops privileges
// /proc/kallsyms shows no addresses.
// A notice says when they cannot be read (addresses are then numbers).
func (tr *tracking) readSymbols(targets []*Target, notices io.Writer) {
	if !tr.stack && !slices.ContainsFunc(targets, func(t *Target) bool { return t.HasLocation }) {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.symbols() == nil && notices != nil {
		fmt.Fprintf(notices, "drop locations and stacks are written as addresses: %v\n", tr.symErr)
	}
}

// symbols returns the kernel's symbols, read once (nil when they are
// hidden: addresses are then shown as numbers).
func (tr *tracking) symbols() *kernelText {
	if !tr.loaded {
		tr.syms, tr.symErr = loadKernelText()
		tr.loaded = true
	}
	return tr.syms
}

// comment returns the words a packet's comment gets for what tracking
// recorded: "parent=0x..." for a clone, "location=SYMBOL+0xOFF" for the
// code that freed it, "stack=f0<-f1<-..." (innermost first) with --stack.
func (tr *tracking) comment(ev *perfring.EventHeader) string {
	if ev.ParentID == 0 && ev.Location == 0 && (ev.Flags&perfring.FlagHasStack == 0 || ev.StackID < 0) {
		return ""
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var w []string
	if ev.ParentID != 0 {
		w = append(w, "parent=0x"+strconv.FormatUint(ev.ParentID, 16))
	}
	if ev.Location != 0 {
		w = append(w, "location="+tr.symbols().format(ev.Location))
	}
	if ev.Flags&perfring.FlagHasStack != 0 && ev.StackID >= 0 {
		if s := tr.stackString(ev.StackID); s != "" {
			w = append(w, "stack="+s)
		}
	}
	return strings.Join(w, " ")
}

// stackString returns the functions of stack id, innermost first, joined
// by "<-" (cached: ids are not reused while the map lives).
func (tr *tracking) stackString(id int32) string {
	if s, ok := tr.stacks[id]; ok {
		return s
	}
	frames := make([]uint64, tr.depth)
	if err := tr.maps[stacksMap].Lookup(uint32(id), frames); err != nil {
		return ""
	}
	syms := tr.symbols()
	var names []string
	for _, a := range frames {
		if a == 0 {
			break
		}
		name := syms.function(a)
		// The probe's own frames (the program and the tracepoint's
		// trampoline) come first: the packet's stack starts after them.
		if len(names) == 0 && isBPFFrame(name) {
			continue
		}
		names = append(names, name)
	}
	s := strings.Join(names, "<-")
	tr.stacks[id] = s
	return s
}

// isBPFFrame reports whether a stack frame is the BPF machinery that runs
// the probe rather than the code the packet passed.
func isBPFFrame(name string) bool {
	return strings.HasPrefix(name, "bpf_") || strings.HasPrefix(name, "__bpf_") ||
		strings.HasPrefix(name, "0x") // the program itself, where kallsyms does not list it
}
