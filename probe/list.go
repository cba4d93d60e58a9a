package probe

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// HookPoint is one attachable place that sees an sk_buff, as [Resolver.List]
// reports it.
type HookPoint struct {
	// Kinds are the spec prefixes that attach there ("kprobe", "fentry",
	// "fexit" for functions; "tp_btf", "raw_tp" for BTF tracepoints;
	// "tracepoint" for classic ones).
	Kinds []string
	// Name is the function or tracepoint ("net:net_dev_xmit" for a
	// classic tracepoint).
	Name string
	// Arg is the 1-based sk_buff argument (the record field's position
	// for classic tracepoints).
	Arg int
	// Signature shows all arguments, for the reader.
	Signature string
}

// Spec returns the first kind's spec for the hook point, ready to paste.
func (h HookPoint) Spec() string {
	return fmt.Sprintf("%s:%s:arg%d", h.Kinds[0], h.Name, h.Arg)
}

// List returns the kernel functions and tracepoints that take an sk_buff
// and match pattern: a shell glob when it holds *, ? or [, otherwise a
// substring; empty matches all. Functions come from kernel BTF, BTF
// tracepoints from btf_trace_* typedefs, classic tracepoints from tracefs.
// Functions in BTF may still be refused by a kprobe (blacklisted, notrace).
func (r *Resolver) List(pattern string) ([]HookPoint, error) {
	match := func(name string) bool {
		if pattern == "" {
			return true
		}
		if strings.ContainsAny(pattern, "*?[") {
			ok, _ := path.Match(pattern, name)
			return ok
		}
		return strings.Contains(name, pattern)
	}
	var out []HookPoint
	for typ, err := range r.kernel.All() {
		if err != nil {
			return nil, fmt.Errorf("iterate kernel BTF: %w", err)
		}
		switch t := typ.(type) {
		case *btf.Func:
			if !match(t.Name) || tracingInternal(t.Name) {
				continue
			}
			proto, ok := t.Type.(*btf.FuncProto)
			if !ok {
				continue
			}
			ps := protoParams(proto, 0)
			if idx := skbArgs(ps); len(idx) > 0 {
				out = append(out, HookPoint{Kinds: []string{"kprobe", "fentry", "fexit"}, Name: t.Name, Arg: idx[0], Signature: signature(ps)})
			}
		case *btf.Typedef:
			name, ok := strings.CutPrefix(t.Name, "btf_trace_")
			if !ok || !match(name) {
				continue
			}
			ps, err := tracepointParams(r.kernel, name)
			if err != nil {
				continue
			}
			if idx := skbArgs(ps); len(idx) > 0 {
				out = append(out, HookPoint{Kinds: []string{"tp_btf", "raw_tp"}, Name: name, Arg: idx[0], Signature: signature(ps)})
			}
		}
	}
	err := listTracepoints(r.tracefs, func(cat, name string) {
		if !match(name) && !match(cat+":"+name) {
			return
		}
		fields, err := tracepointFields(r.tracefs, cat, name)
		if err != nil {
			return
		}
		for i, f := range fields {
			if f.isSkbField() {
				out = append(out, HookPoint{Kinds: []string{"tracepoint"}, Name: cat + ":" + name, Arg: i + 1, Signature: f.decl})
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b HookPoint) int {
		return cmp.Or(cmp.Compare(a.Kinds[0], b.Kinds[0]), cmp.Compare(a.Name, b.Name))
	})
	// BTF may describe a function more than once.
	return slices.CompactFunc(out, func(a, b HookPoint) bool { return a.Kinds[0] == b.Kinds[0] && a.Name == b.Name }), nil
}

// tracingInternal reports whether a function is part of the tracing
// machinery itself (the glue behind every tracepoint), which `list` hides.
func tracingInternal(name string) bool {
	for _, prefix := range []string{"__bpf_trace_", "__probestub_", "__traceiter_", "perf_trace_", "trace_event_raw_event_", "trace_raw_output_", "bpf_trace_run"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// FunctionKinds tells which kinds of function hook attach on this kernel,
// by attaching a trivial program of each kind to fn (a function from
// List): "kprobe", "fentry" and "fexit" map to nil when they attach, to
// an error wrapping ErrNotSupported when the kernel lacks them, or to
// another error (e.g. hook.ErrPermission: could not tell). Results are cached.
func (r *Resolver) FunctionKinds(fn string) map[string]error {
	return map[string]error{
		"kprobe": r.probe("kprobe:"+fn, func() error { return probeKprobe(fn) }),
		"fentry": r.probe("fentry:"+fn, func() error { return probeTracing(ebpf.AttachTraceFEntry, fn, "fentry:"+fn) }),
		"fexit":  r.probe("fexit:"+fn, func() error { return probeTracing(ebpf.AttachTraceFExit, fn, "fexit:"+fn) }),
	}
}
