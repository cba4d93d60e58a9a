package probe

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

func newTestResolver(t *testing.T) *Resolver {
	t.Helper()
	r, err := NewResolver()
	if err != nil {
		t.Fatalf("kernel BTF: %v", err)
	}
	return r
}

func mustParse(t *testing.T, text string) Spec {
	t.Helper()
	s, err := ParseSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTraceFallbackChain checks the chain kprobe -> fentry -> tracepoint for
// the README's first command (kprobe:kfree_skb:arg1). The expected outcome comes from the kernel's
// configuration and an independent look at the kprobe interfaces, not from
// the code under test: with CONFIG_KPROBES the chain must stop at kprobe.
func TestTraceFallbackChain(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	fn := "kfree_skb"
	if os.Getenv("BPFCAP_VMTEST_BROKEN_PROBE") != "" {
		fn = "bpfcap_vmtest_no_such_function" // the harness's self-test: must fail
	}
	got, err := r.Resolve(mustParse(t, "kprobe:"+fn+":arg1"))
	if err != nil {
		t.Fatalf("resolve kprobe:%s:arg1: %v", fn, err)
	}
	t.Logf("attached %s; note: %s", got, got.Note)
	reasons := HaveDropReasons(r.Kernel())
	if reasons == nil && !got.HasReason {
		t.Errorf("%s: no drop reason argument found", got)
	}
	if reasons != nil && got.HasReason {
		t.Errorf("%s: a drop reason argument on a kernel without drop reasons (%v)", got, reasons)
	}

	kprobes := kconfig.Enabled("CONFIG_KPROBES")
	_, errPMU := os.Stat("/sys/bus/event_source/devices/kprobe/type")
	switch {
	case kprobes.On() || errPMU == nil:
		if got.Kind != KindKprobe {
			t.Fatalf("kernel has kprobes (CONFIG_KPROBES=%s, PMU: %v) but the chain picked %s: %s", kprobes, errPMU == nil, got, got.Note)
		}
		if got.Name == "kfree_skb" && got.Note != "" || got.Name != "kfree_skb" && !strings.Contains(got.Note, "inline") {
			t.Errorf("rename of kfree_skb to %s not explained right: %q", got.Name, got.Note)
		}
	case kprobes == kconfig.No:
		if got.Kind == KindKprobe {
			t.Fatalf("kernel has no kprobes but the chain picked %s", got)
		}
		if !strings.Contains(got.Note, "kprobes:") || !strings.Contains(got.Note, "attached "+got.String()) {
			t.Errorf("fallback not explained in one line: %q", got.Note)
		}
		if strings.Contains(got.Note, "\n") {
			t.Errorf("note spans several lines: %q", got.Note)
		}
		// fentry is picked exactly when a fentry program loads here.
		ferr := probeTracing(ebpf.AttachTraceFEntry, got.Name, "fentry")
		if got.Kind == KindFentry && ferr != nil {
			t.Errorf("picked fentry although it does not load: %v", ferr)
		}
		if got.Kind == KindTPBTF && got.Name != "kfree_skb" {
			t.Errorf("tracepoint fallback went to %s, want tp_btf:kfree_skb", got)
		}
	default:
		t.Fatalf("cannot tell whether this kernel has kprobes: %s", kprobes)
	}
	// The chain is checked on every kernel; the drop reason part skips
	// last, where the kernel has none.
	if !t.Failed() {
		kconfig.SkipOrFailFeature(t, reasons, "drop reasons", "5.17")
	}
}

func TestTraceResolveErrors(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	// list is the pattern of hook points a *HookPointError says to list
	// ("" for all); "-" means the error is not one.
	for spec, want := range map[string]struct {
		says []string
		list string
	}{
		"kprobe:no_such_function_xyz":      {[]string{"not found"}, "no_such_function_xyz"},
		"kprobe:ip_rcv:arg2":               {[]string{"argument 2", "struct net_device *dev", "not struct sk_buff *", "the sk_buff is arg1"}, "-"},
		"tp_btf:kfree_skb:arg2":            {[]string{"argument 2", "the sk_buff is arg1"}, "-"},
		"tracepoint:net:no_such_tp":        {[]string{"unknown tracepoint net:no_such_tp"}, "no_such_tp"},
		"tp_btf:no_such_tp":                {[]string{"not found"}, "no_such_tp"},
		"kprobe:tcp_v4_connect":            {[]string{"takes no struct sk_buff *"}, ""},
		"tracepoint:net:net_dev_xmit:arg2": {[]string{"field 2", "the sk_buff is arg1"}, "-"},
	} {
		_, err := r.Resolve(mustParse(t, spec))
		if err == nil {
			t.Errorf("%s resolved; want an error", spec)
			continue
		}
		for _, w := range want.says {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", spec, err, w)
			}
		}
		var he *HookPointError
		switch {
		case want.list == "-" && errors.As(err, &he):
			t.Errorf("%s: error %q is a HookPointError", spec, err)
		case want.list != "-" && (!errors.As(err, &he) || he.Pattern != want.list):
			t.Errorf("%s: error %q: want a HookPointError listing %q", spec, err, want.list)
		}
	}
}

func TestTraceResolveTracepoints(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	// Without drop reasons (before 5.17) kfree_skb's tracepoints resolve
	// without one; the reason part then skips at the end.
	reasons := HaveDropReasons(r.Kernel())
	has := reasons == nil
	for spec, check := range map[string]func(*Target) bool{
		"tp_btf:kfree_skb": func(g *Target) bool {
			return g.Kind == KindTPBTF && g.SkbArg == 1 && g.HasReason == has && (!has || g.ReasonArg > 1)
		},
		"raw_tp:net_dev_xmit": func(g *Target) bool {
			return g.Kind == KindRawTracepoint && g.SkbArg == 1 && !g.HasReason &&
				g.HandOver != nil && g.HandOver.Owner == "the driver" && g.HandOver.SeenBefore.String() == "raw_tracepoint:net_dev_start_xmit"
		},
		"tracepoint:net:net_dev_xmit": func(g *Target) bool {
			return g.Kind == KindTracepoint && g.SkbOffset == 8 && !g.HasReason &&
				g.HandOver != nil && g.HandOver.SeenBefore.String() == "tracepoint:net:net_dev_start_xmit"
		},
		"tp_btf:net_dev_start_xmit": func(g *Target) bool { return g.SkbArg == 1 && g.HandOver == nil },
		"tp:skb:kfree_skb": func(g *Target) bool {
			return g.SkbOffset == 8 && g.HasReason == has && (!has || g.ReasonOffset > 8) && g.HandOver == nil
		},
	} {
		got, err := r.Resolve(mustParse(t, spec))
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if !check(got) {
			t.Errorf("%s resolved to %+v", spec, got)
		}
	}
	if !t.Failed() {
		kconfig.SkipOrFailFeature(t, reasons, "drop reasons", "5.17")
	}
}

// TestTraceResolveHandOvers: each tracepoint that fires after the kernel
// handed the sk_buff on resolves, in BTF and classic form where the kernel
// has it, with who took the skb and a hook point of the same kind that
// sees the packets before, which resolves too; net_dev_xmit is one on
// every kernel.
func TestTraceResolveHandOvers(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	found := 0
	for name, h := range handOvers {
		for _, spec := range []Spec{{Kind: KindTPBTF, Name: name}, {Kind: KindTracepoint, Category: h.category, Name: name}} {
			got, err := r.Resolve(spec)
			var missing *HookPointError
			if errors.As(err, &missing) {
				t.Logf("%s: not in this kernel: %v", spec, err)
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", spec, err)
				continue
			}
			found++
			if got.HandOver == nil || got.HandOver.Owner != h.owner {
				t.Errorf("%s: hand-over %+v, want %s", spec, got.HandOver, h.owner)
				continue
			}
			before := got.HandOver.SeenBefore
			if before.Kind != spec.Kind || before.Name != h.beforeTP {
				t.Errorf("%s: seen before at %s", spec, before)
			}
			bt, err := r.Resolve(before)
			if err != nil {
				t.Errorf("%s: the hook point seen before, %s: %v", spec, before, err)
				continue
			}
			if bt.HandOver != nil {
				t.Errorf("%s: the hook point seen before, %s, fires after a hand-over too", spec, before)
			}
		}
	}
	if found < 2 {
		t.Errorf("%d hand-over tracepoints resolved, want net_dev_xmit's two forms at least", found)
	}
}

func TestTraceDropReasons(t *testing.T) {
	testutils.RunsInGuests(t)
	r := newTestResolver(t)
	names, err := LoadDropReasons(r.Kernel())
	if err != nil {
		t.Fatal(err)
	}
	if names.Name(0xfffffff) != "268435455" {
		t.Errorf("unknown reason rendered as %q", names.Name(0xfffffff))
	}
	reasons := HaveDropReasons(r.Kernel())
	if reasons != nil && len(names) > 0 {
		t.Fatalf("%d drop reason names on a kernel without drop reasons: %v", len(names), reasons)
	}
	kconfig.SkipOrFailFeature(t, reasons, "drop reasons", "5.17")
	found := map[string]bool{}
	for _, n := range names {
		found[n] = true
	}
	for _, want := range []string{"NOT_SPECIFIED", "NO_SOCKET", "NETFILTER_DROP"} {
		if !found[want] {
			t.Errorf("drop reason %s missing from %d names", want, len(names))
		}
	}
	if names.Name(0xfffffff) != "268435455" {
		t.Errorf("unknown reason rendered as %q", names.Name(0xfffffff))
	}
}

func TestListFindsHooks(t *testing.T) {
	testutils.RunsInGuests(t)
	r := newTestResolver(t)
	points, err := r.List("kfree_skb")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"tp_btf:kfree_skb:arg1": false, "tracepoint:skb:kfree_skb:arg1": false}
	for _, p := range points {
		if _, ok := want[p.Spec()]; ok {
			want[p.Spec()] = true
		}
		if strings.HasPrefix(p.Name, "__bpf_trace") {
			t.Errorf("tracing glue listed: %s", p.Name)
		}
	}
	for s, ok := range want {
		if !ok {
			t.Errorf("list kfree_skb lacks %s", s)
		}
	}
}
