package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/probe"
)

// newTraceCmd builds `bpfcap trace HOOK... [keywords] [FILTER...]`.
func newTraceCmd(env *cliEnv) *cobra.Command {
	var (
		o            captureOptions
		netmask      string
		meta         metaFlags
		maxRate      int
		track, stack bool
		countSeen    bool
	)
	cmd := &cobra.Command{
		Use:   "trace HOOK... [proto P] [len SNAPLEN] [dev IFNAME] [pages N] [data_out FILE] [FILTER...]",
		Short: "capture the sk_buffs that reach kernel functions or tracepoints",
		Long: `trace captures the packets (sk_buffs) that reach kernel functions and
tracepoints, filtered in the kernel by a tcpdump expression, into pcapng
with the hook, drop reason, device, process, netns and mark of each packet.

Hooks (argN is the 1-based argument holding the sk_buff; without it bpfcap
finds it from the kernel's BTF):
  kprobe:FUNC[:argN]          fentry:FUNC[:argN]        fexit:FUNC[:argN]
  tracepoint:CAT:NAME[:argN]  (tp:)  tp_btf:NAME[:argN]  raw_tracepoint:NAME[:argN] (raw_tp:)
Where a kernel lacks kprobes, bpfcap uses fentry, then the tracepoint that
carries the function's sk_buff (kfree_skb -> tp_btf:kfree_skb), and says
so on stderr. ` + "`bpfcap list PATTERN`" + ` shows the hook points that take an sk_buff.

A NAME (and a tracepoint's CAT) may be a shell glob, quoted:
kprobe:'tcp_*', fentry:'ip_*', tp_btf:'*', tracepoint:skb:'*'. It stands
for every hook point of that kind in ` + "`bpfcap list`" + ` whose name matches.
The word all stands for every hook point this kernel lets bpfcap attach
to: the functions (kprobe, kprobe-multi where the kernel has it, fentry
where kprobes are missing) and the tracepoints (tp_btf, raw_tp where
tp_btf is missing, classic tracepoints that have no BTF form). Each hook
point is attached once. Hook points of a glob that refuse to load or
attach are counted on stderr (-v lists them with the reason, and the
attach time); only when none attaches is it an error.

With a glob or all (pattern mode), a packet is seen at many hooks, so:
  - On a terminal, bpfcap prints each packet's journey, the same blocks as
    bpfcap journey FILE: its hooks in time order, each with the time since
    the previous hop, the device, the netns and the verdict, and at the
    end the drop reason and location. A block is printed when the packet
    is freed (a hook of the kfree_skb/consume_skb family), or once no hop
    of it came for 1 s; at most 4096 packets are followed at once (past
    that the oldest is printed as it stands). --journey prints the blocks
    into a pipe too (and with explicit hooks); -l prints a line per packet
    and hook instead. -c counts packets at hooks, not journeys.
  - The snap length is 256 bytes unless -s (or len) says otherwise: the
    headers a journey is read by (link, IP with options or extension
    headers, TCP with options, one encapsulation), copied at every hook
    a packet passes, while keeping the ring and the file small.
  - --max-rate is 10000 unless given (--max-rate 0: no bound): a filter
    that matches a flood would otherwise have every packet copied at every
    hook it passes.
  - --track is on unless given (--track=false): a journey goes on after a
    NAT or an encapsulation changed what the filter matched.
  - proto is ip unless given: a host's own packets have no MAC header
    before the neighbour layer, so with eth a journey would begin only at
    the device and a packet dropped on its way out would have none. The
    file holds Linux cooked captures (LINUX_SLL) that tcpdump and
    Wireshark read; proto eth gives Ethernet frames and filters such as
    ether host, at the hooks where a MAC header exists.
  - A file (-w, or pcapng into a pipe) holds one interface per hook that
    captured, added as that hook captures its first packet, not hundreds
    of empty ones; tcpdump and Wireshark read it.
  - stderr names the patterns and counts the hooks ("capturing at 30
    hooks (tp_btf:*)"), and at exit lists the hooks that matched or lost
    packets and the totals; -v lists every hook.

proto picks where a packet starts, from the skb's header offsets: eth (MAC
header), ip (network header, IPv4 or IPv6), ip4, ip6, ieee802_11. Without
proto: eth, so that the file has one link type and tcpdump reads it
(with hook globs or all: ip, see above).
Packets lacking the header are counted as skipped, and at exit bpfcap says
how many and which proto shows them (packets a host sends have no MAC
header before the neighbour layer: proto ip). proto ip with several hooks
writes Linux cooked captures (LINUX_SLL), which libpcap 1.10 reads where it
refuses several raw IP interfaces. proto auto asks for two link types in
one file (MAC header where the skb has one, else raw IP; no filter):
Wireshark reads it, tcpdump does not.
Tracing hooks copy the bytes the filter reads (from the linear part and
the paged frags), run the filter on them, and copy a matching packet up to
the snap length; the filter decides as on the whole packet. Paged frags need the
kernel's page_offset_base and vmemmap_base (x86-64; /proc/kallsyms lists
them with CONFIG_KALLSYMS_ALL): where they are unknown, only the linear
part is captured and bpfcap says so at exit. The length is always the
true one.
--max-rate N bounds what capture costs the traced system: each hook
captures at most N matching packets per second on each CPU (bursts of N/10),
and the kernel sheds the rest before copying them; shed packets are counted
apart from losses (stderr at exit; isb_osdrop and the statistics comment in
the file).

--track follows each packet the filter matched at any hook: every later
hook captures it even when the filter no longer matches it (after a DNAT,
say) until the kernel frees it, and its packet id (epb_packetid, "id" on
the terminal) is never given to another packet. Where the kernel lets
fexit programs attach to skb_clone and skb_copy, clones and copies are
followed too, each with its own id and "parent=ID" in its comment;
elsewhere bpfcap says so. At the kfree_skb family of tracepoints the
comment says where the packet was freed ("location=nf_hook_slow+0x8c"),
and so it does at kprobes and fentry programs on the functions that free
an skb and report their caller to those tracepoints (kfree_skb,
kfree_skb_reason, sk_skb_reason_drop, consume_skb; fentry on x86-64);
--stack adds the kernel stack of each captured packet
("stack=kfree_skb_reason<-nf_hook_slow<-..."), innermost first.`,
		Example: `  bpfcap trace kprobe:kfree_skb:arg1 proto ip -w drops.pcapng
  bpfcap trace tracepoint:net:net_dev_start_xmit proto eth -c 5 | tcpdump -r -
  bpfcap trace tp_btf:net_dev_queue tp_btf:net_dev_start_xmit proto eth icmp
  bpfcap trace all 'tcp port 6666'
  bpfcap trace all -w path.pcapng 'tcp port 6666' && bpfcap journey path.pcapng
  bpfcap trace kprobe:'ip_*' tp_btf:kfree_skb proto ip icmp`,
		Args: needArgs("trace needs a hook, e.g. bpfcap trace tp_btf:net_dev_start_xmit (see `bpfcap list` for hook points)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			hooks, rest, err := splitHooks(args)
			if err != nil {
				return err
			}
			o.Patterns = globWords(hooks)
			if err := o.parseKeywords(rest); err != nil {
				return err
			}
			if len(o.Patterns) > 0 && o.Proto == "" {
				o.Proto = patternProto
			}
			if err := checkMaxRate(maxRate); err != nil {
				return err
			}
			if len(o.Patterns) > 0 && !cmd.Flags().Changed("max-rate") {
				maxRate = patternMaxRate
			}
			if len(o.Patterns) > 0 {
				raiseFileLimit()
				if !cmd.Flags().Changed("track") {
					track = true
				}
			}
			want, nsPath, err := meta.filter()
			if err != nil {
				return err
			}
			dev := o.Device
			if dev == "any" {
				dev = "" // every device, as without dev
			}
			if dev != "" {
				if dev, nsPath, err = resolveDevice(dev, nsPath); err != nil {
					return err
				}
			}
			mask, err := liveNetmask(netmask, dev)
			if err != nil {
				return err
			}
			open := func(ctx context.Context) (bpfcap.Source, error) {
				co := env.kernelCapture(ctx, &o, mask, countSeen)
				co.Want = want
				co.MaxRate = maxRate
				src, err := probe.Open(probe.Options{
					CaptureOptions: co,
					Hooks:          hooks,
					Proto:          o.Proto,
					Device:         dev,
					DeviceNetns:    nsPath,
					Track:          track,
					Stack:          stack,
				})
				if err != nil {
					return nil, didYouMean(withHint(err))
				}
				printAttachNotes(env.stderr, src.Targets(), o.Verbose)
				printTrackingGaps(env.stderr, src, o.Verbose)
				printAttachReport(env.stderr, src.AttachReport(), o.Verbose)
				return src, nil
			}
			return runCapture(cmd.Context(), env, &o, open)
		},
	}
	addCaptureFlags(cmd.Flags(), &o)
	cmd.Flags().BoolVar(&o.Journey, "journey", false, "print a block per packet: its path through the hooks (default on a terminal with hook globs or all; -l: a line per packet and hook)")
	addNetmaskFlag(cmd.Flags(), &netmask)
	addMetaFlags(cmd.Flags(), &meta)
	addMaxRateFlag(cmd.Flags(), &maxRate)
	cmd.Flags().BoolVar(&track, "track", false, "follow every packet the filter matched at any hook until it is freed (through NAT; clones where fexit works)")
	cmd.Flags().BoolVar(&stack, "stack", false, "record the kernel stack of each captured packet")
	cmd.Flags().BoolVar(&countSeen, "count-seen", false, "count every packet each hook sees (the 'seen' statistic; one map update per packet and hook; not with kprobe-multi)")
	return cmd
}

// specLike matches a word meant as a hook spec with a kind bpfcap may not
// know ("kprobes:foo"), so it is reported as a bad spec, not as a filter.
var specLike = regexp.MustCompile(`^[a-z_]+:[A-Za-z_]`)

// splitHooks splits the leading hook words (specs, globs, "all") from the
// keywords and filter that follow them. Every word up to the first
// keyword or filter word that looks like KIND:NAME, or is "all", is a
// hook; there must be at least one.
func splitHooks(args []string) (hooks, rest []string, err error) {
	i := 0
	seen := map[string]string{}
	for ; i < len(args); i++ {
		if !probe.LooksLikePattern(args[i]) && !specLike.MatchString(args[i]) {
			break
		}
		spec, err := probe.ParsePattern(args[i])
		if err != nil {
			return nil, nil, err
		}
		// The same hook twice would capture every packet twice.
		if first, dup := seen[spec.String()]; dup {
			return nil, nil, fmt.Errorf("hook %s given twice (%q and %q): give each hook once", spec, first, args[i])
		}
		seen[spec.String()] = args[i]
	}
	if i == 0 {
		if len(args) > 0 {
			_, err := probe.ParseSpec(args[0])
			return nil, nil, fmt.Errorf("%w (see `bpfcap list` for hook points)", err)
		}
		return nil, nil, fmt.Errorf("trace needs a hook, e.g. kprobe:kfree_skb or tp_btf:net_dev_start_xmit (see `bpfcap list`)")
	}
	return args[:i], args[i:], nil
}

// patternProto is the proto keyword of pattern mode (hook globs, all)
// unless given: the network header, which a packet has at every layer a
// journey passes through (a MAC header only from the neighbour layer on).
const patternProto = "ip"

// patternMaxRate is --max-rate in pattern mode (hook globs, all) unless
// given: matching packets per second per CPU and hook.
const patternMaxRate = 10000

// globWords returns the hook words that may stand for more than one hook
// point (globs, all), as the user wrote them.
func globWords(hooks []string) []string {
	var out []string
	for _, h := range hooks {
		if p, err := probe.ParsePattern(h); err == nil && p.IsGlob() {
			out = append(out, h)
		}
	}
	return out
}

// printAttachNotes says, one line per hook, what was attached other than
// as written: the short form ending in "(-v: why)", or with verbose the
// reasons too; and which hooks fire after the sk_buff was handed on.
func printAttachNotes(w io.Writer, targets []*probe.Target, verbose bool) {
	for _, t := range targets {
		if h := t.HandOver; h != nil {
			fmt.Fprintf(w, "bpfcap: %s fires after %s took the packet, which the kernel may have freed or reused by then: it can miss packets or show another packet's bytes; %s sees the same packets just before\n", t, h.Owner, h.SeenBefore)
		}
		switch {
		case t.Note == "":
		case verbose || t.Short == "":
			fmt.Fprintf(w, "bpfcap: %s\n", t.Note)
		default:
			fmt.Fprintf(w, "bpfcap: %s (-v: why)\n", t.Short)
		}
	}
}

// printTrackingGaps says in one line what --track cannot follow on this
// kernel (-v: the refusals behind it).
func printTrackingGaps(w io.Writer, src *probe.Source, verbose bool) {
	var gaps []string
	if src.CloneTrackingErr() != nil {
		gaps = append(gaps, "clones and copies are followed only where the filter matches them")
	}
	if src.FreeTrackingErr() != nil {
		gaps = append(gaps, "skbs freed where no tracepoint fires stay tracked until the table evicts them")
	}
	if len(gaps) == 0 {
		return
	}
	if !verbose {
		fmt.Fprintf(w, "bpfcap: --track: %s (-v: why)\n", strings.Join(gaps, "; "))
		return
	}
	fmt.Fprintf(w, "bpfcap: --track: %s:\n", strings.Join(gaps, "; "))
	for _, err := range []error{src.CloneTrackingErr(), src.FreeTrackingErr()} {
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(w, "bpfcap:   %s\n", line)
			}
		}
	}
}

// didYouMean adds the closest hook points to an error about one the
// kernel does not have, or the closest globs to one that matched nothing.
func didYouMean(err error) error {
	var nm *probe.NoMatchError
	if errors.As(err, &nm) {
		if len(nm.Similar) > 0 {
			return fmt.Errorf("%w; did you mean %s?", err, strings.Join(nm.Similar, " or "))
		}
		return fmt.Errorf("%w (see `bpfcap list`)", err)
	}
	var nf *probe.NotFoundError
	if !errors.As(err, &nf) {
		return err
	}
	r, rerr := probe.NewResolver()
	if rerr != nil {
		return err
	}
	if s := r.Similar(nf.Spec, 3); len(s) > 0 {
		return fmt.Errorf("%w; did you mean %s?", err, strings.Join(s, " or "))
	}
	return err
}

// printAttachReport writes what globs were attached as, how many hook
// points were not attached (each, with why, when verbose) and, when
// verbose, how many hooks attached in how long.
func printAttachReport(w io.Writer, r probe.AttachReport, verbose bool) {
	for _, n := range r.Notes {
		fmt.Fprintf(w, "bpfcap: %s\n", n)
	}
	if len(r.Refused) > 0 {
		hint := " (-v lists them)"
		if verbose {
			for _, ref := range r.Refused {
				fmt.Fprintf(w, "bpfcap: not attached: %s: %v\n", ref.Hook, ref.Err)
			}
			hint = ""
		}
		points := fmt.Sprintf("%d hook points", len(r.Refused))
		if len(r.Refused) == 1 {
			points = "1 hook point"
		}
		fmt.Fprintf(w, "bpfcap: %s not attached%s\n", points, hint)
	}
	if verbose {
		fmt.Fprintf(w, "bpfcap: attached %d hooks in %.2f s (%.2f s finding them, then loading %d programs, %d at a time)\n",
			r.Attached, r.Total.Seconds(), r.Resolve.Seconds(), r.Programs, r.Parallel)
	}
}
