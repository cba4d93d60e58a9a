package probe

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestTrackFunctionJourney: a SYN that the peer's netfilter drops (an
// nf_tables input chain whose policy is drop) is followed through kernel
// functions, hooked as kprobes and, in a second run, as fentry programs:
// ip_rcv* (a glob), nf_hook_slow and kfree_skb (the drop function this
// kernel has: kfree_skb, kfree_skb_reason or sk_skb_reason_drop), with
// tp_btf:kfree_skb beside them. One packet id runs from an ip_rcv*
// function through nf_hook_slow to the drop function, in that order; the
// drop function's record has the reason NETFILTER_DROP (where the kernel
// has drop reasons, 5.17+) and a location in netfilter, the same as the
// one the kfree_skb tracepoint recorded for that packet. A third run
// hooks the drop function through a glob of its name, which attaches it
// through kprobe-multi where the kernel has it (the registers of an
// ftrace call site rather than of a kprobe).
func TestTrackFunctionJourney(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r := newTestResolver(t)
	p := testutils.NewVethPair(t)
	testutils.DropInput(t, p.PeerNS)
	const port = 6666
	// The drop function of this kernel (kfree_skb is inline from 5.17 on).
	var dropName string
	for _, fn := range []string{"sk_skb_reason_drop", "kfree_skb_reason", "kfree_skb"} {
		if _, err := funcParams(r.Kernel(), fn); err == nil {
			dropName = fn
			break
		}
	}
	if dropName == "" {
		t.Fatal("none of sk_skb_reason_drop, kfree_skb_reason and kfree_skb is a traceable function")
	}
	for _, run := range []struct {
		kind Kind
		glob bool
	}{{KindKprobe, false}, {KindFentry, false}, {KindKprobe, true}} {
		kind := run.kind
		sub, dropHook := kind.String(), kind.String()+":kfree_skb"
		if run.glob {
			sub, dropHook = sub+"-glob", kind.String()+":"+dropName+"*"
		}
		t.Run(sub, func(t *testing.T) {
			switch kind {
			case KindKprobe:
				kconfig.SkipOrFail(t, r.FunctionKinds("ip_rcv")["kprobe"], "CONFIG_KPROBES")
			case KindFentry:
				kconfig.SkipOrFail(t, r.FunctionKinds("ip_rcv")["fentry"], "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS")
			}
			k := kind.String()
			src, sink, stop := runCapture(t, Options{
				Hooks:          []string{k + ":ip_rcv*", k + ":nf_hook_slow", dropHook, "tp_btf:kfree_skb"},
				CaptureOptions: hook.CaptureOptions{Filter: fmt.Sprintf("tcp dst port %d", port)},
				Track:          true,
			})
			var drop, tp *Target
			for _, tg := range src.Targets() {
				switch {
				case tg.Spec.Kind == kind && tg.Name == dropName:
					drop = tg
				case tg.Spec.Kind == KindTPBTF:
					tp = tg
				}
				if tg.Spec.Kind == kind && tg.Kind != kind {
					t.Fatalf("%s attached as %s", tg.Spec, tg)
				}
			}
			if drop == nil || tp == nil || !drop.LocationIsCaller {
				t.Fatalf("targets %v: want %s:%s recording its caller as the location, and tp_btf:kfree_skb", src.Targets(), k, dropName)
			}
			if run.glob && r.HaveKprobeMulti() == nil && !drop.Multi {
				t.Errorf("%s attached without kprobe-multi, which the kernel has", drop)
			}
			name := func(pk *pcapng.Packet) string { return src.Interfaces()[pk.Interface].Name }
			at := func(tg *Target) func(*pcapng.Packet) bool {
				return func(pk *pcapng.Packet) bool { return name(pk) == tg.String() }
			}
			// The tracepoint fires inside the drop function, after its
			// entry: its record of the SYN comes second.
			waitFor(t, "the SYN at "+drop.String()+" and "+tp.String(), func() { synTo(t, p, port) }, func() bool {
				for _, d := range sink.find(at(drop)) {
					if len(sink.find(func(pk *pcapng.Packet) bool { return at(tp)(pk) && pk.PacketID == d.PacketID })) > 0 {
						return true
					}
				}
				return false
			})
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			var d, tpRec pcapng.Packet
			for _, pk := range sink.find(at(drop)) {
				if m := sink.find(func(o *pcapng.Packet) bool { return at(tp)(o) && o.PacketID == pk.PacketID }); len(m) > 0 {
					d, tpRec = pk, m[0]
					break
				}
			}
			// The packet's path, in time order.
			hops := sink.find(func(pk *pcapng.Packet) bool { return pk.PacketID == d.PacketID })
			sort.SliceStable(hops, func(i, j int) bool { return hops[i].Timestamp.Before(hops[j].Timestamp) })
			var path []string
			for i := range hops {
				path = append(path, name(&hops[i]))
			}
			t.Logf("packet %#x: %s; at %s: reason %q, comment %q; at %s: comment %q", d.PacketID, strings.Join(path, " -> "),
				drop, d.DropReason, d.Comment, tp, tpRec.Comment)
			rcv := slices.IndexFunc(path, func(n string) bool { return strings.HasPrefix(n, k+":ip_rcv") })
			nf := slices.IndexFunc(path, func(n string) bool { return strings.HasPrefix(n, k+":nf_hook_slow:") })
			end := slices.Index(path, drop.String())
			if rcv < 0 || nf < rcv || end < nf {
				t.Errorf("path %v: want %s:ip_rcv*, then %s:nf_hook_slow, then %s under one id", path, k, k, drop)
			}
			if HaveDropReasons(r.Kernel()) == nil {
				if !drop.HasReason || d.DropReason != "NETFILTER_DROP" {
					t.Errorf("reason %q at %s (has reason %v), want NETFILTER_DROP", d.DropReason, drop, drop.HasReason)
				}
			}
			loc, tpLoc := commentWord(&d, "location"), commentWord(&tpRec, "location")
			if !strings.Contains(loc, "+0x") || !slices.ContainsFunc([]string{"nf_", "nft_"}, func(p string) bool { return strings.HasPrefix(loc, p) }) {
				t.Errorf("location %q at %s (comment %q), want a netfilter function as SYMBOL+0xOFF", loc, drop, d.Comment)
			}
			if loc != tpLoc {
				t.Errorf("location %q at %s, %q at %s: want the same", loc, drop, tpLoc, tp)
			}
		})
	}
}
