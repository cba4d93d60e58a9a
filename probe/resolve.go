package probe

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/bpfcap/bpfcap/hook"
)

// Target is a hook spec resolved against the running kernel: what is
// actually attached, and where the program finds the sk_buff.
type Target struct {
	// Spec is the spec as the user wrote it.
	Spec Spec
	// Kind is the hook kind that is attached; it differs from Spec.Kind
	// after a fallback.
	Kind Kind
	// Category (classic tracepoints only) and Name say what is attached
	// to; Name differs from Spec.Name after a rename.
	Category, Name string
	// SkbArg is the 1-based argument holding the sk_buff (function and
	// BTF tracepoint kinds).
	SkbArg int
	// SkbOffset is the byte offset of the sk_buff address in a classic
	// tracepoint's record.
	SkbOffset int
	// ReasonArg (1-based argument) or ReasonOffset (classic tracepoint
	// record offset) locate the enum skb_drop_reason when HasReason.
	ReasonArg, ReasonOffset int
	// HasReason is set for hooks that know why a packet was dropped.
	HasReason bool
	// LocationArg (1-based argument) or LocationOffset (classic
	// tracepoint record offset) locate the address of the code that
	// freed the skb (kfree_skb's location) when HasLocation, unless
	// LocationIsCaller.
	LocationArg, LocationOffset int
	HasLocation                 bool
	// LocationIsCaller says that the location is the hooked function's
	// return address: a kprobe or fentry on a function that frees an
	// skb (see callerLocation), whose caller is what the kfree_skb and
	// consume_skb tracepoints report as the location.
	LocationIsCaller bool
	// ArgRegs is the number of registers the function's arguments take
	// (function kinds): an fentry program finds its caller past them.
	ArgRegs int
	// Note is one line for stderr saying what was attached instead of
	// what was asked for and why; empty when the spec attached as written.
	Note string
	// Short is Note without the why: "kprobe:kfree_skb: attached
	// tp_btf:kfree_skb:arg1".
	Short string
	// Optional is set on targets a glob found: when the kernel refuses
	// to load or attach their program, the capture goes on without them.
	Optional bool
	// Multi says a kprobe attaches through a kprobe-multi link (the
	// program is loaded for it) rather than a perf kprobe.
	Multi bool
	// Cookie says the program takes its hook index from the attach
	// cookie, so one program serves many such targets: those of a
	// kprobe-multi link, or perf kprobes where links carry a cookie
	// (Linux 5.15+).
	Cookie bool
	// AddrHook says the program takes its hook index from the address of
	// the function its kprobe probes, so one program serves many perf
	// kprobes where links carry no cookie (before Linux 5.15).
	AddrHook bool
	// HandOver is set on a tracepoint that fires after the kernel handed
	// the sk_buff on (see handOvers): by then its new owner may have
	// freed or reused it, so the hook can miss packets or read another
	// packet's bytes.
	HandOver *HandOver
}

// HandOver says who a tracepoint's sk_buff was handed to before it fires,
// and which hook point sees the same packets before that.
type HandOver struct {
	// Owner took the skb: "the driver", "the qdisc".
	Owner string
	// SeenBefore is the hook point, of the target's kind, that sees the
	// same packets just before the handover.
	SeenBefore Spec
}

// shared reports whether t's program may serve other targets too (its
// hook index comes from the attachment, not from its configuration).
func (t *Target) shared() bool { return t.Cookie || t.AddrHook }

// String returns the spec of what is attached, e.g. "tp_btf:kfree_skb:arg1".
func (t *Target) String() string {
	s := Spec{Kind: t.Kind, Category: t.Category, Name: t.Name, Arg: t.SkbArg}
	if t.Kind == KindTracepoint {
		s.Arg = 0
	}
	return s.String()
}

// Resolver resolves hook specs against the running kernel's BTF and
// tracefs. It caches feature probes; it is not safe for concurrent use.
type Resolver struct {
	kernel  *btf.Spec
	tracefs string
	probes  map[string]error
	// points caches List("") for the globs of Expand.
	points []HookPoint
}

// NewResolver loads the kernel's BTF (/sys/kernel/btf/vmlinux, kernel 5.4+
// built with CONFIG_DEBUG_INFO_BTF) and finds tracefs.
func NewResolver() (*Resolver, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF (needs CONFIG_DEBUG_INFO_BTF, /sys/kernel/btf/vmlinux): %w", err)
	}
	return &Resolver{kernel: spec, tracefs: findTracefs(), probes: map[string]error{}}, nil
}

// Kernel returns the kernel BTF the resolver reads.
func (r *Resolver) Kernel() *btf.Spec { return r.kernel }

// rename describes a function that later kernels replaced: traces of the
// old name go to the first successor the running kernel has.
type rename struct {
	oldSkbArg  int
	successors []string
}

// renames lists kernel functions that became inline or were replaced.
// kfree_skb became an inline wrapper of kfree_skb_reason (5.17/6.0), which
// in turn became one of sk_skb_reason_drop (6.11), where the skb is arg2.
var renames = map[string]rename{
	"kfree_skb":        {oldSkbArg: 1, successors: []string{"kfree_skb_reason", "sk_skb_reason_drop"}},
	"kfree_skb_reason": {oldSkbArg: 1, successors: []string{"sk_skb_reason_drop"}},
}

// functionTracepoints maps kernel functions to the BTF tracepoint that
// fires inside them with the same sk_buff, for the fallback chain.
var functionTracepoints = map[string]string{
	"kfree_skb":          "kfree_skb",
	"kfree_skb_reason":   "kfree_skb",
	"sk_skb_reason_drop": "kfree_skb",
	"consume_skb":        "consume_skb",
	"dev_queue_xmit":     "net_dev_queue",
	"__dev_queue_xmit":   "net_dev_queue",
	"netif_rx":           "netif_rx",
}

// handOver is a tracepoint that fires after the kernel handed the
// sk_buff on: whom to, and the tracepoint (classic: its category too) that
// sees the same packets before.
type handOver struct {
	category, owner          string
	beforeCategory, beforeTP string
}

// handOvers lists, by name, the tracepoints that fire after the kernel
// handed the sk_buff on.
//
// net_dev_xmit fires once the driver's ndo_start_xmit returned, and the
// driver owns the skb then (the tracepoint takes skb->len as an argument
// for this reason): a NIC's transmit completion may free it on another
// CPU, and a veth has already queued it to its peer, whose NAPI (or RPS)
// may run elsewhere. bench/rate saw a program there find no MAC header
// in 0.2% of a cloned flood's packets that tcpdump's tap saw whole:
// consistent with their skbs already freed and reused.
//
// qdisc_enqueue fires once the qdisc accepted the skb; a lockless qdisc
// (pfifo_fast) is not locked then, and another CPU may already have
// dequeued, sent and freed it.
var handOvers = map[string]handOver{
	"net_dev_xmit":  {category: "net", owner: "the driver", beforeCategory: "net", beforeTP: "net_dev_start_xmit"},
	"qdisc_enqueue": {category: "qdisc", owner: "the qdisc", beforeCategory: "net", beforeTP: "net_dev_queue"},
}

// handOverAt returns what handOvers says of the tracepoint spec names
// (nil: it fires before any handover).
func handOverAt(spec Spec) *HandOver {
	h, ok := handOvers[spec.Name]
	if !ok || (spec.Kind == KindTracepoint && spec.Category != h.category) {
		return nil
	}
	before := Spec{Kind: spec.Kind, Name: h.beforeTP}
	if spec.Kind == KindTracepoint {
		before.Category = h.beforeCategory
	}
	return &HandOver{Owner: h.owner, SeenBefore: before}
}

// Resolve resolves spec: it checks that the function or tracepoint exists,
// finds (or checks) its sk_buff argument, follows renames and walks the
// fallback chain kprobe -> fentry -> tracepoint. Errors name the problem
// and what to try instead; a hook point the kernel lacks is a
// *HookPointError; missing capabilities wrap hook.ErrPermission.
func (r *Resolver) Resolve(spec Spec) (*Target, error) {
	switch spec.Kind {
	case KindKprobe, KindFentry, KindFexit:
		return r.resolveFunction(spec)
	case KindTPBTF, KindRawTracepoint:
		return r.resolveBTFTracepoint(spec)
	case KindTracepoint:
		return r.resolveTracepoint(spec)
	case KindKretprobe:
		return nil, fmt.Errorf("%s: a kretprobe sees only the return value, not the sk_buff: use kprobe:%s or fexit:%s", spec, spec.Name, spec.Name)
	}
	return nil, fmt.Errorf("%s: unknown hook kind", spec)
}

func (r *Resolver) probe(key string, fn func() error) error {
	if err, ok := r.probes[key]; ok {
		return err
	}
	err := fn()
	r.probes[key] = err
	return err
}

func (r *Resolver) resolveFunction(spec Spec) (*Target, error) {
	name := spec.Name
	var renamed string
	params, err := funcParams(r.kernel, name)
	if errors.Is(err, errNotFound) {
		rn, ok := renames[name]
		if !ok {
			return nil, &HookPointError{Pattern: name, Err: &NotFoundError{Spec: spec, Detail: fmt.Sprintf("%s: kernel function %s not found in the kernel's BTF (misspelled, inlined or in a module)", spec, name)}}
		}
		if spec.Arg != 0 && spec.Arg != rn.oldSkbArg {
			return nil, fmt.Errorf("%s: %s's sk_buff is arg%d", spec, name, rn.oldSkbArg)
		}
		for _, succ := range rn.successors {
			if params, err = funcParams(r.kernel, succ); err == nil {
				renamed = succ
				break
			}
		}
		if renamed == "" {
			return nil, &HookPointError{Pattern: "kfree_skb", Err: fmt.Errorf("%s: neither %s nor its successors (%s) are traceable functions on this kernel", spec, name, strings.Join(rn.successors, ", "))}
		}
		name = renamed
		spec.Arg = 0 // the user's index was for the old signature
	}
	if err != nil {
		return nil, err
	}
	want := spec.Arg
	point := spec.Kind.String() + ":" + name
	idx, err := chooseSkbArg(point, params, want)
	if err != nil {
		return nil, err
	}
	t := &Target{Spec: spec, Kind: spec.Kind, Name: name, SkbArg: idx, ArgRegs: argRegs(params)}
	if ra := reasonArg(params); ra != 0 {
		t.ReasonArg, t.HasReason = ra, true
	}
	if spec.Kind == KindKprobe || spec.Kind == KindFentry {
		// Both kinds (a kprobe may fall back to fentry) read the caller;
		// the tracepoint fallback below has a target of its own.
		t.HasLocation, t.LocationIsCaller = callerLocation(name), callerLocation(name)
	}
	var why []string
	if renamed != "" {
		why = append(why, fmt.Sprintf("%s is inline on this kernel, its callers reach %s (sk_buff is arg%d)", spec.Name, renamed, idx))
	}

	switch spec.Kind {
	case KindFexit:
		if err := r.probe("fexit:"+name, func() error { return probeTracing(ebpf.AttachTraceFExit, name, "fexit:"+name) }); err != nil {
			if errors.Is(err, hook.ErrPermission) {
				return nil, err
			}
			return nil, &HookPointError{Pattern: name, Err: fmt.Errorf("%s: %w: try kprobe:%s or fentry:%s, or a tracepoint", spec, err, name, name)}
		}
		return r.withNote(t, why), nil
	case KindKprobe:
		if idx > 5 {
			return nil, fmt.Errorf("%s: a kprobe reads only arguments 1-5 portably, the sk_buff is arg%d: use fentry:%s", spec, idx, name)
		}
		err := r.probe("kprobe:"+name, func() error { return probeKprobe(name) })
		if err == nil {
			return r.withNote(t, why), nil
		}
		if errors.Is(err, hook.ErrPermission) {
			return nil, err
		}
		why = append(why, "kprobes: "+shortReason(err))
		fallthrough
	case KindFentry:
		err := r.probe("fentry:"+name, func() error { return probeTracing(ebpf.AttachTraceFEntry, name, "fentry:"+name) })
		if err == nil {
			t.Kind = KindFentry
			return r.withNote(t, why), nil
		}
		if errors.Is(err, hook.ErrPermission) {
			return nil, err
		}
		why = append(why, "fentry: "+shortReason(err))
	}

	// Last resort: a tracepoint that fires with the same sk_buff.
	tp, ok := functionTracepoints[name]
	if !ok {
		tp, ok = functionTracepoints[spec.Name]
	}
	if !ok {
		if _, err := tracepointParams(r.kernel, name); err == nil {
			tp, ok = name, true
		}
	}
	if !ok {
		return nil, &HookPointError{Err: fmt.Errorf("%s cannot be attached on this kernel (%s), and no tracepoint carries its sk_buff", spec, strings.Join(why, "; "))}
	}
	tpt, err := r.resolveBTFTracepoint(Spec{Kind: KindTPBTF, Name: tp})
	if err != nil {
		return nil, fmt.Errorf("%s cannot be attached on this kernel (%s), and its tracepoint fallback failed: %w", spec, strings.Join(why, "; "), err)
	}
	tpt.Spec = t.Spec
	if tpt.Note != "" {
		why = append(why, tpt.Note)
	}
	return r.withNote(tpt, why), nil
}

// withNote finishes t's note from the reasons collected on the way.
func (r *Resolver) withNote(t *Target, why []string) *Target {
	if len(why) == 0 {
		return t
	}
	t.Short = fmt.Sprintf("%s: attached %s", t.Spec, t)
	t.Note = fmt.Sprintf("%s (%s)", t.Short, strings.Join(why, "; "))
	return t
}

// shortReason drops the "what:" prefix a feature error starts with.
func shortReason(err error) string {
	s := err.Error()
	if _, rest, ok := strings.Cut(s, ": "); ok {
		return rest
	}
	return s
}

func (r *Resolver) resolveBTFTracepoint(spec Spec) (*Target, error) {
	t, err := r.btfTracepointTarget(spec)
	if err != nil {
		return nil, err
	}
	if spec.Kind == KindTPBTF {
		err := r.probe("tp_btf:"+spec.Name, func() error {
			return probeTracing(ebpf.AttachTraceRawTp, spec.Name, "tp_btf:"+spec.Name)
		})
		switch {
		case errors.Is(err, hook.ErrPermission):
			return nil, err
		case errors.Is(err, ErrNotSupported):
			t.Kind = KindRawTracepoint
			return r.withNote(t, []string{"tp_btf: " + shortReason(err)}), nil
		}
	}
	return t, nil
}

// btfTracepointTarget finds the sk_buff (and drop reason) argument of
// the BTF tracepoint spec names, without asking the kernel whether its
// kind attaches.
func (r *Resolver) btfTracepointTarget(spec Spec) (*Target, error) {
	params, err := tracepointParams(r.kernel, spec.Name)
	if errors.Is(err, errNotFound) {
		return nil, &HookPointError{Pattern: spec.Name, Err: &NotFoundError{Spec: spec, Detail: fmt.Sprintf("%s: tracepoint %s not found in the kernel's BTF (no btf_trace_%s)", spec, spec.Name, spec.Name)}}
	}
	if err != nil {
		return nil, err
	}
	idx, err := chooseSkbArg(spec.Kind.String()+":"+spec.Name, params, spec.Arg)
	if err != nil {
		return nil, err
	}
	t := &Target{Spec: spec, Kind: spec.Kind, Name: spec.Name, SkbArg: idx}
	t.HandOver = handOverAt(spec)
	if ra := reasonArg(params); ra != 0 {
		t.ReasonArg, t.HasReason = ra, true
	}
	if la := locationArg(params, spec.Name, idx); la != 0 {
		t.LocationArg, t.HasLocation = la, true
	}
	return t, nil
}

func (r *Resolver) resolveTracepoint(spec Spec) (*Target, error) {
	fields, err := tracepointFields(r.tracefs, spec.Category, spec.Name)
	if errors.Is(err, errNotFound) {
		return nil, &HookPointError{Pattern: spec.Name, Err: fmt.Errorf("%s: unknown tracepoint %s:%s", spec, spec.Category, spec.Name)}
	}
	if err != nil {
		return nil, err
	}
	f, err := chooseSkbField(spec.String(), fields, spec.Arg)
	if err != nil {
		return nil, err
	}
	t := &Target{Spec: spec, Kind: KindTracepoint, Category: spec.Category, Name: spec.Name, SkbOffset: f.offset}
	t.HandOver = handOverAt(spec)
	for _, rf := range fields {
		if rf.isReasonField() && rf.size == 4 {
			t.ReasonOffset, t.HasReason = rf.offset, true
		}
		if rf.isLocationField() {
			t.LocationOffset, t.HasLocation = rf.offset, true
		}
	}
	return t, nil
}
