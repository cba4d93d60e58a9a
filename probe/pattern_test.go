package probe

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

func TestPatternParseForms(t *testing.T) {
	for text, want := range map[string]Pattern{
		"all":                         {All: true},
		"kprobe:tcp_*":                {Spec: Spec{Kind: KindKprobe, Name: "tcp_*"}},
		"fentry:ip_?cv":               {Spec: Spec{Kind: KindFentry, Name: "ip_?cv"}},
		"tp_btf:*":                    {Spec: Spec{Kind: KindTPBTF, Name: "*"}},
		"raw_tp:net_dev_[qx]*":        {Spec: Spec{Kind: KindRawTracepoint, Name: "net_dev_[qx]*"}},
		"tracepoint:skb:*":            {Spec: Spec{Kind: KindTracepoint, Category: "skb", Name: "*"}},
		"tp:*:kfree_skb":              {Spec: Spec{Kind: KindTracepoint, Category: "*", Name: "kfree_skb"}},
		"kprobe:kfree_skb:arg1":       {Spec: Spec{Kind: KindKprobe, Name: "kfree_skb", Arg: 1}},
		"tracepoint:net:net_dev_xmit": {Spec: Spec{Kind: KindTracepoint, Category: "net", Name: "net_dev_xmit"}},
	} {
		got, err := ParsePattern(text)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", text, err)
			continue
		}
		if got != want {
			t.Errorf("ParsePattern(%q) = %+v, want %+v", text, got, want)
		}
		if got.IsGlob() != (strings.ContainsAny(text, "*?[") || text == "all") {
			t.Errorf("%q: IsGlob %v", text, got.IsGlob())
		}
		if got.String() != text && text != "tp:*:kfree_skb" && text != "raw_tp:net_dev_[qx]*" {
			t.Errorf("%q prints as %q", text, got.String())
		}
	}
	for text, wantInErr := range map[string]string{
		"kprobe:tcp_*:arg1": "no :arg1",
		"kprobe:tcp_[":      "not a valid glob",
		"kprbe:tcp_*":       "did you mean kprobe",
		"tracepoint:*":      "tracepoint",
		"kprobe:tcp-*":      "invalid character",
		"tp_btf:*:*:*":      "want KIND:GLOB",
	} {
		_, err := ParsePattern(text)
		if err == nil || !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ParsePattern(%q) = %v, want an ErrBadSpec saying %q", text, err, wantInErr)
		}
	}
	for word, want := range map[string]bool{"all": true, "tp_btf:*": true, "kprobe:tcp_*": true, "tcp": false, "alls": false} {
		if LooksLikePattern(word) != want {
			t.Errorf("LooksLikePattern(%q) = %v", word, !want)
		}
	}
}

// skbTracepoints reads tracefs directly: the classic tracepoints of
// category cat whose record has an skbaddr field.
func skbTracepoints(t *testing.T, cat string) []string {
	t.Helper()
	root := findTracefs()
	if root == "" {
		t.Fatal("no tracefs")
	}
	formats, err := filepath.Glob(filepath.Join(root, "events", cat, "*", "format"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range formats {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), " skbaddr;") {
			out = append(out, cat+":"+filepath.Base(filepath.Dir(f)))
		}
	}
	slices.Sort(out)
	return out
}

// TestPatternResolveGlobs: a glob expands to exactly the hook points of
// its kind that bpfcap list shows and match it; tracepoint:skb:* to the
// skb tracepoints tracefs describes with an skbaddr.
func TestPatternResolveGlobs(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	pats, err := ParsePatterns([]string{"tp_btf:net_dev_*", "tracepoint:skb:*"})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := r.Expand(pats)
	if err != nil {
		t.Fatal(err)
	}
	points, err := r.List("net_dev_")
	if err != nil {
		t.Fatal(err)
	}
	var wantBTF []string
	for _, p := range points {
		if p.Kinds[0] == "tp_btf" && strings.HasPrefix(p.Name, "net_dev_") {
			wantBTF = append(wantBTF, p.Name)
		}
	}
	if !slices.Contains(wantBTF, "net_dev_xmit") {
		t.Fatalf("list net_dev_ lacks tp_btf:net_dev_xmit: %v", points)
	}
	var gotBTF, gotClassic []string
	for _, tg := range exp.Targets {
		if !tg.Optional {
			t.Errorf("%s from a glob is not optional", tg)
		}
		switch tg.Kind {
		case KindTPBTF, KindRawTracepoint:
			gotBTF = append(gotBTF, tg.Name)
		case KindTracepoint:
			gotClassic = append(gotClassic, tg.Category+":"+tg.Name)
		default:
			t.Errorf("unexpected target %s", tg)
		}
	}
	// All that the list shows but net_dev_xmit, which fires after the
	// driver took the skb: passed over, and refused with why.
	slices.Sort(gotBTF)
	wantBTF = slices.DeleteFunc(wantBTF, func(name string) bool { return name == "net_dev_xmit" })
	if !slices.Equal(gotBTF, wantBTF) {
		t.Errorf("tp_btf:net_dev_* expanded to %v, want the list but net_dev_xmit: %v", gotBTF, wantBTF)
	}
	var ho *HandedOverError
	if i := slices.IndexFunc(exp.Refused, func(r Refusal) bool { return r.Hook == "tp_btf:net_dev_xmit" }); i < 0 || !errors.As(exp.Refused[i].Err, &ho) {
		t.Errorf("tp_btf:net_dev_* did not pass over net_dev_xmit as fired after the hand-over: %v", exp.Refused)
	}
	// The skb tracepoints whose BTF form is not attached already.
	var wantClassic []string
	for _, tp := range skbTracepoints(t, "skb") {
		if !slices.Contains(wantBTF, strings.TrimPrefix(tp, "skb:")) {
			wantClassic = append(wantClassic, tp)
		}
	}
	slices.Sort(gotClassic)
	if len(wantClassic) == 0 || !slices.Equal(gotClassic, wantClassic) {
		t.Errorf("tracepoint:skb:* expanded to %v, tracefs has %v", gotClassic, wantClassic)
	}
}

// TestPatternResolveAll: all holds each hook point once, the skb
// tracepoints (in BTF form where the kernel has it), and the functions
// where a kind of function hook attaches, else one refusal counting them.
func TestPatternResolveAll(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	exp, err := r.Expand([]Pattern{{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	kinds := map[Kind]int{}
	for _, tg := range exp.Targets {
		if first, dup := seen[tg.pointKey()]; dup {
			t.Errorf("hook point attached twice: %s and %s", first, tg)
		}
		seen[tg.pointKey()] = tg.String()
		kinds[tg.Kind]++
	}
	for _, tp := range []string{"kfree_skb", "net_dev_start_xmit", "consume_skb"} {
		if _, ok := seen["tracepoint:"+tp]; !ok {
			t.Errorf("all lacks the tracepoint %s", tp)
		}
	}
	// Tracepoints that fire after the skb was handed on (net_dev_xmit on
	// every kernel) are passed over, and counted with why.
	passed := map[string]bool{}
	for _, ref := range exp.Refused {
		var ho *HandedOverError
		if errors.As(ref.Err, &ho) {
			passed[strings.TrimPrefix(ref.Hook, KindTPBTF.String()+":")] = true
			if !strings.Contains(ref.Err.Error(), ho.HandOver.SeenBefore.String()+" sees the same packets before") {
				t.Errorf("refusal %s: %v", ref.Hook, ref.Err)
			}
		}
	}
	for name := range handOvers {
		if first, ok := seen["tracepoint:"+name]; ok {
			t.Errorf("all attaches %s, which fires after the sk_buff was handed on", first)
		}
	}
	if !passed["net_dev_xmit"] {
		t.Errorf("all did not pass over net_dev_xmit as fired after the hand-over: %v", exp.Refused)
	}
	for name := range passed {
		if _, ok := handOvers[name]; !ok {
			t.Errorf("all passed over %s, which is not a hand-over tracepoint", name)
		}
	}
	_, errPMU := os.Stat("/sys/bus/event_source/devices/kprobe/type")
	fns := kinds[KindKprobe] + kinds[KindFentry]
	t.Logf("all: %d targets (%v), %d refusals; notes %q", len(exp.Targets), kinds, len(exp.Refused), exp.Notes)
	switch {
	case kconfig.Enabled("CONFIG_KPROBES").On() || errPMU == nil:
		if kinds[KindKprobe] < 100 {
			t.Errorf("kprobes work here, but all has %d kprobe targets", kinds[KindKprobe])
		}
	case fns == 0:
		if len(exp.Refused) == 0 || !strings.Contains(exp.Refused[0].Hook, "kernel functions") {
			t.Errorf("no function targets and no refusal saying why: %v", exp.Refused)
		}
	}
}

// TestPatternResolveNoMatch: a glob that matches nothing is a NoMatchError
// offering globs that do match.
func TestPatternResolveNoMatch(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	for text, want := range map[string]string{
		"kprobe:tpc_v4_*":  "kprobe:tcp_v4_*",
		"tracepoint:sbk:*": "tracepoint:skb:*",
		"tp_btf:tcp_v4_*":  "kprobe:tcp_v4_*",
	} {
		p, err := ParsePattern(text)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Expand([]Pattern{p})
		var nm *NoMatchError
		if !errors.As(err, &nm) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want a NoMatchError", text, err)
			continue
		}
		if !strings.Contains(err.Error(), text) {
			t.Errorf("%s: the error does not name the pattern: %v", text, err)
		}
		if !slices.Contains(nm.Similar, want) {
			t.Errorf("%s: suggests %v, want %s among them", text, nm.Similar, want)
		}
		for _, s := range nm.Similar {
			q, err := ParsePattern(s)
			if err != nil {
				t.Fatalf("suggestion %q does not parse: %v", s, err)
			}
			if _, err := r.Expand([]Pattern{q}); err != nil {
				t.Errorf("suggestion %s matches nothing: %v", s, err)
			}
		}
	}
}

// ipOf returns the IP packet in pk: with proto ip and several hooks,
// packets are written behind a Linux cooked header.
func ipOf(src *Source, pk *pcapng.Packet) []byte {
	if src.Interfaces()[pk.Interface].LinkType == pcapng.LinkTypeLinuxSLL && len(pk.Data) >= 16 {
		return pk.Data[16:]
	}
	return pk.Data
}

// hookNames returns the hooks (interface names) each packet id was
// captured at.
func hookNames(src *Source, pkts []pcapng.Packet) map[uint64][]string {
	out := map[uint64][]string{}
	for _, pk := range pkts {
		name := src.Interfaces()[pk.Interface].Name
		if !slices.Contains(out[pk.PacketID], name) {
			out[pk.PacketID] = append(out[pk.PacketID], name)
		}
	}
	return out
}

// TestPatternCaptureGlobs: tp_btf:'net_dev_*' and tp_btf:'kfree_*' capture
// one dropped datagram at several hooks under one packet id; everything
// is detached after Close.
func TestPatternCaptureGlobs(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	before := testutils.CountPrograms(t, "probe_")
	p := testutils.NewVethPair(t)
	const port = 6548
	src, sink, stop := runCapture(t, Options{
		Hooks:          []string{"tp_btf:net_dev_*", "tp_btf:kfree_*"},
		Proto:          "ip",
		CaptureOptions: hook.CaptureOptions{Filter: "udp dst port 6548"},
	})
	if n := len(src.Interfaces()); n < 3 {
		t.Fatalf("%d hooks attached, want net_dev_queue, net_dev_start_xmit, ... and kfree_skb", n)
	}
	match := func(pk *pcapng.Packet) bool { return udpDstPort(ipOf(src, pk)) == port }
	journey := func() bool {
		for _, hooks := range hookNames(src, sink.find(match)) {
			if len(hooks) >= 2 && slices.Contains(hooks, "tp_btf:kfree_skb:arg1") {
				return true
			}
		}
		return false
	}
	waitFor(t, "a datagram at a net_dev hook and at kfree_skb", func() { sendUDP(t, p, p.PeerIP, port) }, journey)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, pk := range sink.find(func(*pcapng.Packet) bool { return true }) {
		if udpDstPort(ipOf(src, &pk)) != port {
			t.Errorf("%s: packet the filter rejects: % x", src.Interfaces()[pk.Interface].Name, pk.Data[:min(28, len(pk.Data))])
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	testutils.WaitProgramsUnloaded(t, "probe_", before)
}

// countKprobeMultiLinks counts the kprobe-multi links of programs named
// prog in the kernel.
func countKprobeMultiLinks(t *testing.T, prog string) int {
	t.Helper()
	n := 0
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.KprobeMultiType {
			continue
		}
		p, err := ebpf.NewProgramFromID(info.Program)
		if err != nil {
			continue
		}
		pi, err := p.Info()
		p.Close()
		if err == nil && pi.Name == prog {
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPatternCaptureKprobeGlob: kprobe:'ip_*' attaches to the ip_*
// functions that take an sk_buff, where the kernel has kprobe-multi (5.18+)
// through one program and one kprobe-multi link for all functions alike
// (the hook named by the attach cookie; elsewhere from 5.15 one program
// for perf kprobes that carry the cookie), and a datagram the peer receives
// is captured at ip_rcv and ip_local_deliver under one packet id, each
// record under its own function's name.
func TestPatternCaptureKprobeGlob(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	kconfig.SkipOrFail(t, r.FunctionKinds("ip_rcv")["kprobe"], "CONFIG_KPROBES")
	before := testutils.CountPrograms(t, "probe_")
	multiBefore := countKprobeMultiLinks(t, "probe_kprobe")
	p := testutils.NewVethPair(t)
	const port = 6549
	src, sink, stop := runCapture(t, Options{
		Hooks:          []string{"kprobe:ip_*"},
		Proto:          "ip",
		CaptureOptions: hook.CaptureOptions{Filter: "udp dst port 6549"},
	})
	attached := len(src.Interfaces())
	multi := countKprobeMultiLinks(t, "probe_kprobe") - multiBefore
	t.Logf("kprobe:ip_* attached %d hooks, %d through kprobe-multi", attached, multi)
	match := func(pk *pcapng.Packet) bool { return udpDstPort(ipOf(src, pk)) == port }
	// Both run once per received datagram, in this order; records
	// named after the wrong function (a wrong cookie) would miss one.
	want := []string{"kprobe:ip_rcv:arg1", "kprobe:ip_local_deliver:arg1"}
	waitFor(t, "a datagram at ip_rcv and ip_local_deliver", func() { sendUDP(t, p, p.PeerIP, port) }, func() bool {
		for _, hooks := range hookNames(src, sink.find(match)) {
			i := slices.Index(hooks, want[0])
			if i >= 0 && slices.Contains(hooks[i+1:], want[1]) {
				return true
			}
		}
		return false
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, ifc := range src.Interfaces() {
		if ok, _ := path.Match("kprobe:ip_*:arg[1-5]", ifc.Name); !ok {
			t.Errorf("interface %q is not a kprobe of an ip_* function", ifc.Name)
		}
	}
	errMulti := r.HaveKprobeMulti()
	// The hooks attached through kprobe-multi and those whose program
	// takes the hook index from the attach cookie, and the program
	// configurations among them: one program each, and one link each
	// for kprobe-multi.
	// Without cookies (before 5.15), hooks whose function has one
	// address take the index from it, and share programs the same way.
	type config struct {
		skbArg, reasonArg      int
		hasReason, multi, addr bool
	}
	viaMulti, viaCookie, viaAddr := 0, 0, 0
	configs, multiConfigs := map[config]bool{}, map[config]bool{}
	for _, tg := range src.Targets() {
		c := config{tg.SkbArg, tg.ReasonArg, tg.HasReason, tg.Multi, tg.AddrHook}
		if tg.Multi {
			viaMulti++
			multiConfigs[c] = true
		}
		if tg.Cookie {
			viaCookie++
			configs[c] = true
		}
		if tg.AddrHook {
			viaAddr++
			configs[c] = true
		}
	}
	progs := src.AttachReport().Programs
	t.Logf("%d hooks through kprobe-multi, %d with the hook index from the cookie, %d from the address, %d programs loaded", viaMulti, viaCookie, viaAddr, progs)
	if errMulti == nil && viaMulti < attached/2 {
		t.Errorf("the kernel has kprobe-multi, but only %d of %d hooks attached through it", viaMulti, attached)
	}
	if errMulti == nil && multi != len(multiConfigs) {
		t.Errorf("%d kprobe-multi links for %d hooks of %d configurations, want one link per configuration", multi, viaMulti, len(multiConfigs))
	}
	if r.HaveKprobeCookie() == nil && viaCookie != attached {
		t.Errorf("the kernel has attach cookies, but only %d of %d hooks take their index from one", viaCookie, attached)
	}
	if r.HaveKprobeCookie() != nil && viaAddr < attached/2 {
		t.Errorf("the kernel has no attach cookies, but only %d of %d hooks take their index from their function's address", viaAddr, attached)
	}
	if progs != attached-viaCookie-viaAddr+len(configs) {
		t.Errorf("%d programs loaded for %d hooks, %d sharing %d programs by attach cookie or address", progs, attached, viaCookie+viaAddr, len(configs))
	}
	if errMulti != nil && multi != 0 {
		t.Errorf("%d kprobe-multi links on a kernel without them (%v)", multi, errMulti)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	testutils.WaitProgramsUnloaded(t, "probe_", before)
	if n := countKprobeMultiLinks(t, "probe_kprobe"); n != multiBefore {
		t.Errorf("%d kprobe-multi links left after Close", n-multiBefore)
	}
	// Everything but kprobe-multi itself works without it (before 5.18, or
	// built without CONFIG_FPROBE).
	kconfig.SkipOrFail(t, errMulti, "CONFIG_FPROBE")
}
