package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/pcapng"
)

// sharedSeenNote ends the interface description of a hook whose program
// serves many (kprobe-multi, attach cookies, function addresses).
const sharedSeenNote = hook.SeenNotCountedNote + " (one program serves many functions)"

// Options configure a tracing capture. With CountSeen, tracing hooks
// count every packet they see (one map update per packet and hook, which
// a rejected packet pays), except those whose program serves many
// functions (kprobe-multi, attach cookies, function addresses), which
// work out their hook only for packets they keep.
type Options struct {
	hook.CaptureOptions
	// Hooks are the hook specs, e.g. "kprobe:kfree_skb:arg1" (at least one).
	Hooks []string
	// Proto picks the header records start at: "eth" (MAC header), "ip"
	// (network header, IPv4 or IPv6), "ip4", "ip6", "ieee802_11", or
	// ProtoAuto (the MAC header when the skb has one, else the network
	// header: two link types in one file). Empty means "eth". Packets
	// without the header are counted (InterfaceStats.NoHeader). With
	// "ip" and several hooks, packets are written as Linux cooked
	// captures (LINKTYPE_LINUX_SLL), which libpcap 1.10 reads.
	Proto string
	// Device restricts the capture to one device ("" captures all), in
	// the kernel: of the network namespace at DeviceNetns (a path such as
	// /run/netns/NAME or /proc/PID/ns/net; "": bpfcap's own).
	Device      string
	DeviceNetns string
	// Track follows every packet the filter matched at any hook: later
	// hooks capture it even when the filter no longer matches (after NAT,
	// say) until it is freed, and its clones and copies where the kernel
	// lets fexit programs attach to skb_clone and skb_copy (a notice says
	// when it does not). Its packet id (epb_packetid) is then never given
	// to another packet; a clone's comment names its parent's id
	// ("parent=0x..."). Freed packets are forgotten at the entry of
	// kfree_skbmem and napi_skb_cache_put where fentry works, else at the
	// kfree_skb, consume_skb and skb_copy_datagram_iovec tracepoints; these
	// hooks capture nothing unless named.
	Track bool
	// Stack records the kernel stack of each captured packet, written in
	// its comment as "stack=f0<-f1<-..." (innermost first).
	Stack bool
}

// Source is a running tracing capture: one program per hook (or one for
// the many functions of a kprobe-multi link), attached and writing into
// one shared ring. It implements bpfcap.Source. Close
// detaches everything.
type Source struct {
	*hook.Source
	targets []*Target
	notices io.Writer
	snaplen int
	pages   pageMap
	// cloneErr is why Track does not follow clones (nil when it does),
	// freeErr why it misses frees without a tracepoint.
	cloneErr, freeErr error
	// paged counts records cut short by paged data that was not copied.
	paged atomic.Uint64
	// report says what was attached from the hook words.
	report AttachReport
	// tracking is the session's packet tracking (its maps).
	tracking *tracking
}

// Targets returns what was attached, one per hook: the plain specs of
// Options.Hooks in their order, then the hook points of its globs. A
// Target whose Note is set was attached other than as written (a rename,
// a fallback to another kind).
func (s *Source) Targets() []*Target { return s.targets }

// CloneTrackingErr says why Options.Track does not follow clones and
// copies of packets on this kernel: the errors loading or attaching the
// fexit programs on skb_clone and skb_copy (EPERM wrapped in
// hook.ErrPermission where a policy refuses fexit, ErrNotSupported where
// the kernel lacks it). It is nil when they are followed or Track is off.
func (s *Source) CloneTrackingErr() error { return s.cloneErr }

// FreeTrackingErr says why Options.Track does not see skbs freed where no
// tracepoint fires (GRO merges, TCP's acknowledged segments: they stay
// tracked until the table evicts them): the errors of the fentry programs
// on kfree_skbmem and napi_skb_cache_put. nil when they are seen or Track
// is off.
func (s *Source) FreeTrackingErr() error { return s.freeErr }

// Open parses and resolves every hook spec, glob and "all" (see
// Resolver.Expand), then loads and attaches one program per hook point,
// several at a time; functions attached through kprobe-multi share one
// program and link per configuration, each hook known by its attach
// cookie. Nothing is loaded before every spec resolved, and
// whatever was attached is detached again when a later step fails. A hook
// point a glob found whose program the kernel refuses to load or attach
// is left out (Source.AttachReport lists it); when none attaches, Open
// fails.
//
// Errors name the problem: a malformed spec wraps ErrBadSpec, missing
// capabilities wrap hook.ErrPermission, a kernel that lacks every kind of
// hook for a function wraps ErrNotSupported, a hook point the kernel does
// not have is a *HookPointError, a filter libpcap rejects carries
// libpcap's message.
func Open(opts Options) (_ *Source, err error) {
	if len(opts.Hooks) == 0 {
		return nil, &HookPointError{Err: errors.New("trace: no hook given: name one such as kprobe:kfree_skb or tp_btf:net_dev_start_xmit")}
	}
	patterns, err := ParsePatterns(opts.Hooks)
	if err != nil {
		return nil, err
	}
	header, lt, extra, err := chooseHeader(opts.Proto, opts.Filter)
	if err != nil {
		return nil, err
	}
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	var ifindex, netns uint32
	if opts.Device != "" {
		if ifindex, netns, err = deviceID(opts.Device, opts.DeviceNetns); err != nil {
			return nil, err
		}
	}

	r, err := NewResolver()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	exp, err := r.Expand(patterns)
	if err != nil {
		return nil, err
	}
	targets := exp.Targets
	resolved := time.Since(start)
	reasons, err := LoadDropReasons(r.Kernel())
	if err != nil {
		return nil, err
	}

	base, err := loadProbe()
	if err != nil {
		return nil, fmt.Errorf("trace: read the embedded probe object: %w", err)
	}
	co := opts.CaptureOptions
	co.Ring.Compile = compileOnce(co.Ring.Compile)
	if co.Filter != "" {
		// Once, before hundreds of loads: a filter that does not
		// compile for these hooks is the user's to fix, not a refusal.
		snap := co.Snaplen
		if snap <= 0 || snap > hook.MaxData {
			snap = hook.MaxData
		}
		if _, err := co.Ring.Compile(co.Filter, filter.LinkTypeFromFile(uint32(lt)), snap, co.Netmask); err != nil {
			return nil, &FilterError{Proto: opts.Proto, Err: fmt.Errorf("trace: %w", err)}
		}
	}
	if co.Ring.MaxHooks < len(targets) {
		co.Ring.MaxHooks = max(64, len(targets))
	}
	b, err := hook.NewBuilder(base, co)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer b.Rollback(&err)
	tr, err := newTracking(base, opts.Track, opts.Stack)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	b.OnClose(tr)
	// Before the hooks, so that their free tracepoints know whether
	// the free functions forget skbs.
	tr.attachFrees(b, base)
	addrs, err := newHookAddrs(base, targets)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	b.OnClose(addrs)
	sessionMaps := maps.Clone(tr.maps)
	sessionMaps[hookAddrsMap] = addrs
	pages := findPageMap()
	headLoads := haveHeadLoads()
	funcIP := haveFuncIP(r.Kernel())
	// Loaded concurrently with hook.Load (Builder.Load is for one
	// goroutine); each program goes to the builder with its hook.
	results := loadAttachAll(targets, func(i int, t *Target) (*hook.Program, error) {
		spec, progName, err := prepareSpec(base, t, header, pages, headLoads, funcIP)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		forAttach(spec.Programs[progName], t)
		if m := spec.Maps[rateMap]; m != nil && t.shared() {
			// A rate bucket per hook the program serves.
			m.MaxEntries = uint32(len(targets))
		}
		if err := tr.configure(spec, t); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		prog, err := hook.Load(spec, b.Ring(), hook.Options{
			Program:   progName,
			Hook:      i,
			Filter:    co.Filter,
			Netmask:   co.Netmask,
			Snaplen:   co.Snaplen,
			CountSeen: co.CountSeen,
			LinkType:  lt,
			Backend:   hook.Scratch,
			Ifindex:   ifindex,
			Netns:     netns,
			Task:      inProcessContext(t),
			Want:      co.Want,
			MaxRate:   co.MaxRate,
			Maps:      sessionMaps,
			// The filter runs inlined: no bpf-to-bpf call per packet.
			InlineFilter: true,
		})
		if err != nil {
			return nil, explainLoad(t, err)
		}
		return prog, nil
	})
	refused := exp.Refused
	detach := &detachGroup{}
	var attached []*Target
	programs := 0
	for i, res := range results {
		t := res.target
		if res.err != nil {
			if refusable(t, res.err) {
				refused = append(refused, Refusal{Hook: t.String(), Err: res.err})
				continue
			}
			for j := i + 1; j < len(results); j++ {
				results[j].close()
			}
			return nil, res.err
		}
		if res.link != nil {
			detach.links = append(detach.links, res.link)
		}
		if !res.shared {
			programs++
		}
		attached = append(attached, t)
		desc := "requested as " + t.Spec.String()
		if t.Note != "" {
			desc = t.Note
		}
		if t.HandOver != nil {
			desc += "; fires after " + t.HandOver.Owner + " took the sk_buff: packets may be missing or another packet's"
		}
		if t.shared() {
			// bpf/probe.c works out a shared program's hook only for
			// packets it keeps: it cannot count what each hook sees.
			desc += "; " + sharedSeenNote
		}
		b.Hook(hook.Hook{
			SeenNotCounted: t.shared(),
			Programs:       []*hook.Program{res.prog},
			Links:          []io.Closer{detach},
			Interface:      pcapng.Interface{Name: t.String(), Description: desc, LinkType: lt, Device: opts.Device, Netns: netns},
			ExtraLinkTypes: extra,
			VerdictType:    pcapng.VerdictNone,
			// Several raw IP interfaces make a file libpcap 1.10 refuses.
			CookRaw: lt == pcapng.LinkTypeRaw && len(targets) > 1,
		})
	}
	if len(attached) == 0 {
		return nil, nothingAttached(refused)
	}
	report := AttachReport{Attached: len(attached), Programs: programs, Notes: exp.Notes, Refused: refused,
		Resolve: resolved, Total: time.Since(start), Parallel: min(runtime.GOMAXPROCS(0), len(targets))}
	// Packets are attributed to their socket's owner; without the
	// learner, only hooks that run in process context name a process.
	if err := b.LearnOwners(); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if err := tr.attachOwn(b, base, attached); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	tr.readSymbols(attached, opts.Ring.Notices)
	src, err := b.Source(hook.SourceOptions{
		DropReason: reasons.Name,
		Comment:    tr.comment,
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	snap := opts.Snaplen
	if snap <= 0 || snap > hook.MaxData {
		snap = hook.MaxData
	}
	return &Source{Source: src, targets: attached, notices: opts.Ring.Notices, snaplen: snap, pages: pages, report: report, cloneErr: tr.cloneErr, freeErr: tr.freeErr, tracking: tr}, nil
}

// explainLoad adds what to do to a load error of t's program.
func explainLoad(t *Target, err error) error {
	if errors.Is(err, hook.ErrPermission) {
		return fmt.Errorf("trace: load %s: %w", t, err)
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("trace: the kernel refused the %s program: %w", t, err)
	}
	return fmt.Errorf("trace: load %s: %w", t, err)
}

// processContextHooks are functions and tracepoints that the kernel only
// calls in the context of the process that owns the packet's socket
// (receiving into a user buffer): there the current task may name the
// owner of a packet whose socket's owner was not learned.
var processContextHooks = map[string]bool{
	"skb_copy_datagram_iovec":        true, // tracepoint skb:skb_copy_datagram_iovec
	"skb_copy_datagram_iter":         true,
	"skb_copy_and_csum_datagram_msg": true,
	"__skb_datagram_iter":            true,
}

// inProcessContext reports whether t always runs in the process context of
// the packet's socket owner. Elsewhere (softirq, another task's context)
// the current task says nothing about the packet.
func inProcessContext(t *Target) bool {
	return processContextHooks[t.Name]
}

// deviceID returns the ifindex of device name in the network namespace
// at nsPath ("": bpfcap's own) and that namespace's inode.
func deviceID(name, nsPath string) (uint32, uint32, error) {
	if nsPath != "" {
		l, err := netnsfind.LinkByNameIn(nsPath, name)
		if err != nil {
			return 0, 0, fmt.Errorf("dev %s: %w", name, err)
		}
		ino, err := netnsfind.Inode(nsPath)
		if err != nil {
			return 0, 0, fmt.Errorf("dev %s: %w", name, err)
		}
		return uint32(l.Attrs().Index), ino, nil
	}
	ifc, err := hook.LookupDevice(name)
	if err != nil {
		return 0, 0, err
	}
	// thread-self: the calling thread may have entered another
	// namespace than the process's (tests do).
	ino, err := netnsfind.Inode("/proc/thread-self/ns/net")
	if err != nil {
		return 0, 0, fmt.Errorf("dev %s: %w", name, err)
	}
	return uint32(ifc.Attrs().Index), ino, nil
}

// Run captures into sink until ctx is done (see bpfcap.Source). At the
// end it says once, on the notices writer, when packets were cut short
// because part of their data is not copied.
func (s *Source) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	err := s.Source.Run(ctx, &pagedCounter{PacketWriter: sink, snaplen: s.snaplen, n: &s.paged})
	if n := s.paged.Load(); n > 0 && s.notices != nil {
		if s.pages.Mode == fragsNone {
			fmt.Fprintf(s.notices, "%d packets were captured up to the end of their linear data only: tracing hooks do not copy paged (fragment) data on this kernel (%s); their length is still the true one\n", n, s.pages.Reason)
		} else {
			fmt.Fprintf(s.notices, "%d packets were captured short of the snap length: tracing hooks copy linear data and paged frags, not a frag_list, device memory or frags past the 17th; their length is still the true one\n", n)
		}
	}
	return err
}

// pagedCounter counts packets shorter than both their wire length and the
// snap length: the part in paged frags was not copied.
type pagedCounter struct {
	pcapng.PacketWriter
	snaplen int
	n       *atomic.Uint64
}

func (p *pagedCounter) WritePacket(pkt *pcapng.Packet) error {
	if len(pkt.Data) < min(pkt.WireLen, p.snaplen) {
		p.n.Add(1)
	}
	return p.PacketWriter.WritePacket(pkt)
}
