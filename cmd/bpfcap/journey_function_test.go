package main

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/probe"
)

// TestJourneyFunctionDrop: `bpfcap trace KIND:'ip_rcv*' KIND:nf_hook_slow
// KIND:kfree_skb --track -w FILE 'tcp dst port 6666'`, KIND kprobe and
// then fentry, with the peer's netfilter dropping what it receives:
// `bpfcap journey FILE` shows a SYN's journey through an ip_rcv* function,
// nf_hook_slow and the drop function (kfree_skb, kfree_skb_reason or
// sk_skb_reason_drop), ending as a kfree_skb tracepoint's journey does:
// "dropped: NETFILTER_DROP at nf_hook_slow+0x..." where the kernel has
// drop reasons (5.17+); before, the drop function's record still names
// the netfilter location in its comment.
func TestJourneyFunctionDrop(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	r, err := probe.NewResolver()
	if err != nil {
		t.Fatal(err)
	}
	reasons := probe.HaveDropReasons(r.Kernel()) == nil
	p := testutils.NewVethPair(t)
	testutils.DropInput(t, p.PeerNS)
	const port = 6666
	for _, kind := range []string{"kprobe", "fentry"} {
		t.Run(kind, func(t *testing.T) {
			switch kind {
			case "kprobe":
				kconfig.SkipOrFail(t, r.FunctionKinds("ip_rcv")["kprobe"], "CONFIG_KPROBES")
			case "fentry":
				kconfig.SkipOrFail(t, r.FunctionKinds("ip_rcv")["fentry"], "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS")
			}
			out := filepath.Join(t.TempDir(), "function.pcapng")
			tr := startPatternRun(t, "trace", kind+":ip_rcv*", kind+":nf_hook_slow", kind+":kfree_skb", "--track", "-w", out,
				fmt.Sprintf("tcp dst port %d", port))
			tr.waitAttached(t, out)
			// A few SYNs (the first and its retransmissions): each is one
			// journey, dropped at the peer's input.
			testutils.Do(t, p.HostNS, func() error {
				c, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", p.PeerIP, port), 1500*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return nil
			})
			if err := tr.stop(t); err != nil {
				t.Fatalf("bpfcap trace: %v\n%s", err, tr.stderr)
			}
			text := runJourney(t, out)
			dropped := regexp.MustCompile(`^  dropped: NETFILTER_DROP at nft?_\w+\+0x[0-9a-f]+$`)
			located := regexp.MustCompile(`location=nft?_\w+\+0x[0-9a-f]+`)
			dropFn := regexp.MustCompile(`^` + kind + `:(kfree_skb|kfree_skb_reason|sk_skb_reason_drop):`)
			full := 0
			// Blocks are separated by an empty line: the packet, its
			// hops, and "dropped: ..." when it was dropped.
			for _, block := range strings.Split(strings.TrimSpace(text), "\n\n") {
				lines := strings.Split(block, "\n")
				hops := map[string]bool{}
				for _, l := range lines[1:] {
					f := strings.Fields(l)
					if len(f) == 0 {
						continue
					}
					switch hook := f[0]; {
					case strings.HasPrefix(hook, kind+":ip_rcv"):
						hops["ip_rcv"] = true
					case strings.HasPrefix(hook, kind+":nf_hook_slow:"):
						hops["nf_hook_slow"] = true
					case dropFn.MatchString(hook):
						hops["drop"] = true
					}
				}
				if len(hops) < 3 {
					continue
				}
				if reasons && !dropped.MatchString(lines[len(lines)-1]) {
					t.Errorf("journey through %s functions does not end with the reason and a netfilter location:\n%s", kind, block)
				}
				full++
			}
			if full == 0 {
				t.Errorf("no journey through %s:ip_rcv*, %s:nf_hook_slow and %s:kfree_skb:\n%s\nstderr:\n%s", kind, kind, kind, text, tr.stderr)
			}
			// The location is in the file either way (without drop
			// reasons the journey does not say "dropped").
			_, pkts := readPcapng(t, out)
			n := 0
			for _, pk := range pkts {
				if located.MatchString(pk.Comment) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("no record names a netfilter location:\n%s", text)
			}
		})
	}
}
