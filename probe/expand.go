package probe

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/hook"
)

// Expansion is what a list of hook patterns resolved to on the running
// kernel.
type Expansion struct {
	// Targets are the hooks to load and attach, each hook point once.
	// Those a glob found are Optional: when their program does not load
	// or attach, the capture goes on without them.
	Targets []*Target
	// Refused are the hook points a glob matched that cannot be attached
	// on this kernel, with the reason.
	Refused []Refusal
	// Notes are lines for stderr saying what a glob was attached as
	// instead of as written ("kprobe:tcp_*: attached as fentry").
	Notes []string
}

// Refusal is a hook point that was matched but not attached.
type Refusal struct {
	// Hook is the hook point, e.g. "kprobe:tcp_v4_rcv", or a group of
	// them ("412 kernel functions").
	Hook string
	// Err says why.
	Err error
}

// NoMatchError says that a glob matched no hook point of its kind. It
// matches ErrNotFound.
type NoMatchError struct {
	// Pattern is the glob as parsed.
	Pattern Pattern
	// Similar are patterns that do match something, closest first (the
	// candidates for "did you mean").
	Similar []string
}

// Error names the pattern and what it was matched against.
func (e *NoMatchError) Error() string {
	what := "kernel function that takes an sk_buff"
	switch e.Pattern.Spec.Kind {
	case KindTPBTF, KindRawTracepoint:
		what = "BTF tracepoint that carries an sk_buff"
	case KindTracepoint:
		what = "tracepoint that records an sk_buff address"
	}
	return fmt.Sprintf("%s: no %s matches", e.Pattern, what)
}

// Is reports whether target is ErrNotFound.
func (e *NoMatchError) Is(target error) bool { return target == ErrNotFound }

// hookPoints returns List("") once per resolver.
func (r *Resolver) hookPoints() ([]HookPoint, error) {
	if r.points == nil {
		points, err := r.List("")
		if err != nil {
			return nil, err
		}
		r.points = points
	}
	return r.points, nil
}

// Expand resolves hook patterns into targets. A plain spec resolves as
// [Resolver.Resolve] does (its errors are returned); a glob expands to
// every hook point of its kind whose name matches, [All] to every hook
// point of every kind that attaches here. A glob that matches nothing is
// a *[NoMatchError]. Each hook point is attached once: a glob skips what
// an earlier word already attaches, and a classic tracepoint is skipped
// where its BTF tracepoint is attached.
func (r *Resolver) Expand(patterns []Pattern) (*Expansion, error) {
	exp := &Expansion{}
	seen := map[string]bool{}
	add := func(t *Target) {
		if k := t.pointKey(); !seen[k] {
			seen[k] = true
			exp.Targets = append(exp.Targets, t)
		}
	}
	// Plain specs first, so that a glob does not take their hook point
	// as optional.
	for _, p := range patterns {
		if p.IsGlob() {
			continue
		}
		t, err := r.Resolve(p.Spec)
		if err != nil {
			return nil, err
		}
		add(t)
	}
	for _, p := range patterns {
		if !p.IsGlob() {
			continue
		}
		var err error
		if p.All {
			err = r.expandAll(exp, add)
		} else {
			err = r.expandGlob(p, exp, add)
		}
		if err != nil {
			return nil, err
		}
	}
	return exp, nil
}

// pointKey names the hook point a target attaches to, whatever the kind:
// kprobe and fentry of one function are one point, and so are the BTF
// and classic forms of one tracepoint.
func (t *Target) pointKey() string {
	switch t.Kind {
	case KindKprobe, KindFentry:
		return "entry:" + t.Name
	case KindFexit:
		return "exit:" + t.Name
	}
	return "tracepoint:" + t.Name
}

// kindOf says which kind a hook point list entry of kinds has for k.
func kindListed(kinds []string, k Kind) bool {
	name := k.String()
	if k == KindRawTracepoint {
		name = "raw_tp"
	}
	return slices.Contains(kinds, name)
}

func (r *Resolver) expandGlob(p Pattern, exp *Expansion, add func(*Target)) error {
	points, err := r.hookPoints()
	if err != nil {
		return err
	}
	var matched []HookPoint
	for _, hp := range points {
		if kindListed(hp.Kinds, p.Spec.Kind) && p.match(hp.Name) {
			matched = append(matched, hp)
		}
	}
	if len(matched) == 0 {
		return &NoMatchError{Pattern: p, Similar: r.SimilarPatterns(p, 3)}
	}
	switch p.Spec.Kind {
	case KindKprobe, KindFentry, KindFexit:
		return r.expandFunctions(p.String(), p.Spec.Kind, matched, exp, add)
	}
	r.expandTracepoints(matched, p.Spec.Kind, exp, add)
	return nil
}

// expandAll adds every function (kprobe, else fentry) and every
// tracepoint (BTF, else classic) that takes an sk_buff.
func (r *Resolver) expandAll(exp *Expansion, add func(*Target)) error {
	points, err := r.hookPoints()
	if err != nil {
		return err
	}
	var funcs, btfTPs, classic []HookPoint
	btfNames := map[string]bool{}
	for _, hp := range points {
		switch {
		case kindListed(hp.Kinds, KindKprobe):
			funcs = append(funcs, hp)
		case kindListed(hp.Kinds, KindTPBTF):
			btfTPs = append(btfTPs, hp)
			btfNames[hp.Name] = true
		default:
			classic = append(classic, hp)
		}
	}
	// A classic tracepoint only where its BTF form is missing.
	classic = slices.DeleteFunc(classic, func(hp HookPoint) bool {
		_, name, _ := strings.Cut(hp.Name, ":")
		return btfNames[name]
	})
	if err := r.expandFunctions(All, KindKprobe, funcs, exp, add); err != nil {
		return err
	}
	r.expandTracepoints(btfTPs, KindTPBTF, exp, add)
	r.expandTracepoints(classic, KindTracepoint, exp, add)
	return nil
}

// noKindError says that no kind of function hook attaches on this kernel.
type noKindError struct{ reasons []string }

func (e *noKindError) Error() string {
	return "no kind of function hook attaches on this kernel (" + strings.Join(e.reasons, "; ") + ")"
}

// Unwrap makes the error match ErrNotSupported.
func (e *noKindError) Unwrap() error { return ErrNotSupported }

// sampleFunctions are functions every kernel can trace, for telling
// whether a kind of hook attaches at all (a function on the kprobe
// blacklist would say no for another reason).
var sampleFunctions = []string{"__netif_receive_skb", "ip_rcv", "dev_queue_xmit", "__dev_queue_xmit", "consume_skb"}

// functionKind returns the kind that attaches to functions for a glob of
// kind want: want itself, or fentry where a kprobe is wanted but the
// kernel has no kprobes. The sample is one of the matched functions.
func (r *Resolver) functionKind(want Kind, funcs []HookPoint) (Kind, []string, error) {
	sample := funcs[0].Name
	for _, hp := range funcs {
		if slices.Contains(sampleFunctions, hp.Name) {
			sample = hp.Name
			break
		}
	}
	kinds := r.FunctionKinds(sample)
	var why []string
	order := []Kind{want}
	if want == KindKprobe {
		order = append(order, KindFentry)
	}
	for _, k := range order {
		err := kinds[k.String()]
		if err == nil {
			return k, why, nil
		}
		if errors.Is(err, hook.ErrPermission) {
			return 0, nil, err
		}
		why = append(why, k.String()+": "+shortReason(err))
	}
	return 0, nil, &noKindError{reasons: why}
}

// expandFunctions adds a target per function in funcs, of the kind that
// attaches here (kprobe, with kprobe-multi where the kernel has it and
// ftrace can patch the function; fentry where kprobes are missing).
func (r *Resolver) expandFunctions(what string, want Kind, funcs []HookPoint, exp *Expansion, add func(*Target)) error {
	if len(funcs) == 0 {
		return nil
	}
	kind, why, err := r.functionKind(want, funcs)
	var nk *noKindError
	if errors.As(err, &nk) {
		// Counted, not fatal: other words may attach.
		exp.Refused = append(exp.Refused, Refusal{Hook: fmt.Sprintf("%s (%d kernel functions)", what, len(funcs)), Err: err})
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if kind != want {
		exp.Notes = append(exp.Notes, fmt.Sprintf("%s: %d functions attached as %s (%s)", what, len(funcs), kind, strings.Join(why, "; ")))
	}
	var multi map[string]bool
	cookie := false
	if kind == KindKprobe {
		if r.HaveKprobeMulti() == nil {
			multi = r.ftraceable()
		}
		cookie = r.HaveKprobeCookie() == nil
	}
	for _, hp := range funcs {
		params, err := funcParams(r.kernel, hp.Name)
		if err != nil {
			exp.Refused = append(exp.Refused, Refusal{Hook: kind.String() + ":" + hp.Name, Err: err})
			continue
		}
		t := &Target{Spec: Spec{Kind: want, Name: hp.Name}, Kind: kind, Name: hp.Name, SkbArg: hp.Arg, ArgRegs: argRegs(params), Optional: true}
		if kind == KindKprobe && hp.Arg > 5 {
			exp.Refused = append(exp.Refused, Refusal{Hook: t.String(), Err: fmt.Errorf("a kprobe reads only arguments 1-5 portably, the sk_buff is arg%d", hp.Arg)})
			continue
		}
		if ra := reasonArg(params); ra != 0 && (kind != KindKprobe || ra <= 5) {
			t.ReasonArg, t.HasReason = ra, true
		}
		if kind == KindKprobe || kind == KindFentry {
			t.HasLocation, t.LocationIsCaller = callerLocation(hp.Name), callerLocation(hp.Name)
		}
		t.Multi = multi[hp.Name]
		t.Cookie = t.Multi || cookie
		// Without cookies, by the probed function's address where it
		// names one function (Open checks that).
		t.AddrHook = kind == KindKprobe && !t.Cookie
		add(t)
	}
	return nil
}

// expandTracepoints adds a target per tracepoint in tps, resolved as kind
// (tp_btf falls back to raw_tp where the kernel has no tp_btf). Those
// that do not resolve are refused, and so are those that fire after the
// sk_buff was handed on (a *HandedOverError).
//
// Whether tp_btf attaches is asked once, of the first tracepoint, not of
// each (a load each, which costs more than the capture's own).
func (r *Resolver) expandTracepoints(tps []HookPoint, kind Kind, exp *Expansion, add func(*Target)) {
	attachAs := kind
	for i, hp := range tps {
		s := Spec{Kind: kind, Name: hp.Name}
		var (
			t   *Target
			err error
		)
		switch {
		case kind == KindTracepoint:
			s.Category, s.Name, _ = strings.Cut(hp.Name, ":")
			t, err = r.Resolve(s)
		case i == 0:
			// Resolve falls back to raw_tp where tp_btf does not attach.
			if t, err = r.Resolve(s); err == nil && t.Kind != kind {
				attachAs = t.Kind
				exp.Notes = append(exp.Notes, fmt.Sprintf("%s: %d tracepoints attached as %s (%s)", s.Kind, len(tps), t.Kind, t.Note))
			}
		default:
			if t, err = r.btfTracepointTarget(s); err == nil {
				t.Kind = attachAs
			}
		}
		if err == nil && t.HandOver != nil {
			err = &HandedOverError{Hook: s.String(), HandOver: *t.HandOver}
		}
		if err != nil {
			exp.Refused = append(exp.Refused, Refusal{Hook: s.String(), Err: err})
			continue
		}
		t.Optional = true
		t.Note, t.Short = "", ""
		add(t)
	}
}

// HaveKprobeMulti returns nil when the kernel attaches one kprobe program
// to many functions in one link (kprobe-multi, Linux 5.18+), or why not.
// The result is cached.
func (r *Resolver) HaveKprobeMulti() error {
	return r.probe("kprobe_multi", func() error {
		prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
			Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti,
			Instructions: trivialInsns, License: "GPL",
		}, ebpf.ProgramOptions{LogDisabled: true})
		if err != nil {
			return featureError("kprobe-multi", err)
		}
		defer prog.Close()
		var lastErr error
		for _, fn := range sampleFunctions {
			l, err := link.KprobeMulti(prog, link.KprobeMultiOptions{Symbols: []string{fn}})
			if err == nil {
				return l.Close()
			}
			lastErr = err
		}
		return featureError("kprobe-multi", lastErr)
	})
}

// HaveKprobeCookie returns nil when a perf kprobe's link carries an
// attach cookie (Linux 5.15+), so that one program serves many kprobes, or
// why not. The result is cached.
func (r *Resolver) HaveKprobeCookie() error {
	return r.probe("kprobe_cookie", func() error {
		prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
			Type: ebpf.Kprobe, Instructions: trivialInsns, License: "GPL",
		}, ebpf.ProgramOptions{LogDisabled: true})
		if err != nil {
			return featureError("kprobe", err)
		}
		defer prog.Close()
		var lastErr error
		for _, fn := range sampleFunctions {
			l, err := link.Kprobe(fn, prog, &link.KprobeOptions{Cookie: 1})
			if err == nil {
				return l.Close()
			}
			lastErr = err
		}
		return featureError("kprobe with a cookie", lastErr)
	})
}

// ftraceable returns the functions ftrace can patch (tracefs
// available_filter_functions): the only ones kprobe-multi attaches to.
// Empty when tracefs does not list them.
func (r *Resolver) ftraceable() map[string]bool {
	out := map[string]bool{}
	if r.tracefs == "" {
		return out
	}
	f, err := os.Open(filepath.Join(r.tracefs, "available_filter_functions"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), " ")
		out[name] = true
	}
	return out
}
