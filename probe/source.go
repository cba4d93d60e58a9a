package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/pcapng"
)

// Options configure a tracing capture. Tracing hooks always count the
// packets they see (CountSeen is ignored).
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
	// Device restricts the capture to one device of bpfcap's network
	// namespace ("" captures all), in the kernel.
	Device string
	// Track follows every packet the filter matched at any hook: later
	// hooks capture it even when the filter no longer matches (after NAT,
	// say) until it is freed, and its clones and copies where the kernel
	// lets fexit programs attach to skb_clone and skb_copy (a notice says
	// when it does not). Its packet id (epb_packetid) is then never given
	// to another packet; a clone's comment names its parent's id
	// ("parent=0x..."). The kfree_skb, consume_skb and
	// skb_copy_datagram_iovec tracepoints (and, where fentry works,
	// kfree_skbmem and napi_skb_cache_put) are attached to forget freed
	// packets, without capturing there unless named.
	Track bool
	// Stack records the kernel stack of each captured packet, written in
	// its comment as "stack=f0<-f1<-..." (innermost first).
	Stack bool
}

// Source is a running tracing capture: one program per hook, attached and
// writing into one shared ring. It implements bpfcap.Source. Close
// detaches everything.
type Source struct {
	*hook.Source
	targets []*Target
	notices io.Writer
	snaplen int
	pages   pageMap
	// cloneErr is why Track does not follow clones (nil when it does).
	cloneErr error
	// paged counts records cut short by paged data that was not copied.
	paged atomic.Uint64
}

// Targets returns what each hook spec resolved to and was attached as, in
// the order of Options.Hooks. A Target whose Note is set was attached
// other than as written (a rename, a fallback to another kind).
func (s *Source) Targets() []*Target { return s.targets }

// CloneTrackingErr says why Options.Track does not follow clones and
// copies of packets on this kernel: the errors loading or attaching the
// fexit programs on skb_clone and skb_copy (EPERM wrapped in
// hook.ErrPermission where a policy refuses fexit, ErrNotSupported where
// the kernel lacks it). It is nil when they are followed or Track is off.
func (s *Source) CloneTrackingErr() error { return s.cloneErr }

// Open parses and resolves every hook spec, then loads and attaches one
// program per hook. Nothing is loaded before every spec resolved, and
// whatever was attached is detached again when a later step fails.
//
// Errors name the problem: a malformed spec wraps ErrBadSpec, missing
// capabilities wrap hook.ErrPermission, a kernel that lacks every kind of
// hook for a function wraps ErrNotSupported, a hook point the kernel does
// not have is a *HookPointError, a filter libpcap rejects carries
// libpcap's message.
func Open(opts Options) (_ *Source, err error) {
	if len(opts.Hooks) == 0 {
		return nil, &HookPointError{Err: errors.New("trace: no hook given: name one such as kprobe:kfree_skb or tracepoint:net:net_dev_xmit")}
	}
	specs, err := ParseSpecs(opts.Hooks)
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
		if ifindex, netns, err = deviceID(opts.Device); err != nil {
			return nil, err
		}
	}

	r, err := NewResolver()
	if err != nil {
		return nil, err
	}
	targets := make([]*Target, len(specs))
	for i, s := range specs {
		if targets[i], err = r.Resolve(s); err != nil {
			return nil, err
		}
	}
	reasons, err := LoadDropReasons(r.Kernel())
	if err != nil {
		return nil, err
	}

	base, err := loadProbe()
	if err != nil {
		return nil, fmt.Errorf("trace: read the embedded probe object: %w", err)
	}
	co := opts.CaptureOptions
	co.CountSeen = true // bpf/probe.c counts every packet it sees
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
	pages := findPageMap()
	for i, t := range targets {
		spec, progName, err := prepareSpec(base, t, header, pages)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		if err := tr.configure(spec, t); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		prog, err := b.Load(spec, hook.Options{
			Program:  progName,
			Hook:     i,
			LinkType: lt,
			Backend:  hook.Scratch,
			Ifindex:  ifindex,
			Netns:    netns,
			Task:     true,
			Maps:     tr.maps,
		})
		if err != nil {
			return nil, explainLoad(t, err)
		}
		l, err := attach(t, prog.Program)
		if err != nil {
			return nil, err
		}
		desc := "requested as " + t.Spec.String()
		if t.Note != "" {
			desc = t.Note
		}
		b.Hook(hook.Hook{
			Programs:       []*hook.Program{prog},
			Links:          []io.Closer{l},
			Interface:      pcapng.Interface{Name: t.String(), Description: desc, LinkType: lt},
			ExtraLinkTypes: extra,
			VerdictType:    pcapng.VerdictNone,
			// Several raw IP interfaces make a file libpcap 1.10 refuses.
			CookRaw: lt == pcapng.LinkTypeRaw && len(targets) > 1,
		})
	}
	if err := tr.attachOwn(b, base, targets, opts.Ring.Notices); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	tr.readSymbols(targets, opts.Ring.Notices)
	src, err := b.Source(hook.SourceOptions{
		DropReason: reasons.Name,
		DeviceName: deviceName,
		Comment:    tr.comment,
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	snap := opts.Snaplen
	if snap <= 0 || snap > hook.MaxData {
		snap = hook.MaxData
	}
	return &Source{Source: src, targets: targets, notices: opts.Ring.Notices, snaplen: snap, pages: pages, cloneErr: tr.cloneErr}, nil
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

// deviceID returns the ifindex of device name in bpfcap's network
// namespace and that namespace's inode.
func deviceID(name string) (uint32, uint32, error) {
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

// deviceName names a device of any network namespace that has a name
// under /run/netns or belongs to a process, so packets seen in test or
// container namespaces show their device names.
func deviceName(ifindex, netns uint32) string {
	own, err := netnsfind.Inode("/proc/self/ns/net")
	if err == nil && (netns == 0 || netns == own) {
		if ifc, err := net.InterfaceByIndex(int(ifindex)); err == nil {
			return ifc.Name
		}
		return ""
	}
	path := netnsfind.Find(netns)
	if path == "" {
		return ""
	}
	l, err := netnsfind.LinkIn(path, int(ifindex))
	if err != nil {
		return ""
	}
	return l.Attrs().Name
}
