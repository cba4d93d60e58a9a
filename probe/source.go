package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cilium/ebpf"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/pcapng"
)

// Options configure a tracing capture.
type Options struct {
	// Hooks are the hook specs, e.g. "kprobe:kfree_skb:arg1" (at least one).
	Hooks []string
	// Filter is a tcpdump filter expression ("" captures everything).
	Filter string
	// Netmask is the IPv4 netmask, host byte order, that `ip broadcast`
	// uses (0: as tcpdump -r; a live tcpdump uses the device's,
	// filter.DeviceNetmask).
	Netmask uint32
	// Proto picks the header records start at: "eth" (MAC header), "ip"
	// (network header, IPv4 or IPv6), "ip4", "ip6", "ieee802_11", or
	// ProtoAuto (the MAC header when the skb has one, else the network
	// header: two link types in one file). Empty means "eth". Packets
	// without the header are counted (InterfaceStats.NoHeader). With
	// "ip" and several hooks, packets are written as Linux cooked
	// captures (LINKTYPE_LINUX_SLL), which libpcap 1.10 reads.
	Proto string
	// Snaplen is the number of bytes to capture per packet (0: 65536).
	Snaplen int
	// MaxRate bounds the packets each hook captures per CPU and second
	// (0: unbounded): the kernel sheds the rest before copying them and
	// counts them (pcapng.InterfaceStats.Shed).
	MaxRate int
	// Device restricts the capture to one device of bpfcap's network
	// namespace ("" captures all), in the kernel.
	Device string
	// Ring configures the transport (buffer size, perf, notices).
	Ring hook.RingOptions
	// Notices receives one line per hook that was attached other than as
	// written (renames, fallbacks), and other notices (nil: discarded).
	Notices io.Writer
	// Verbose says why in the attach notices (the reasons each preferred
	// kind of hook was not used); otherwise a notice is one short line
	// and the why is in the interface description.
	Verbose bool
}

// protoHeaders maps the `proto` keywords a tracing hook supports to the
// header a record starts at and its link type.
var protoHeaders = map[string]struct {
	header uint32
	lt     pcapng.LinkType
}{
	"eth":        {headerEth, pcapng.LinkTypeEthernet},
	"ip":         {headerIP, pcapng.LinkTypeRaw},
	"ip4":        {headerIP4, pcapng.LinkTypeIPv4},
	"ip6":        {headerIP6, pcapng.LinkTypeIPv6},
	"ieee802_11": {headerIEEE80211, pcapng.LinkTypeIEEE80211},
}

// ProtoNames lists the `proto` keywords tracing hooks accept.
func ProtoNames() []string {
	names := make([]string, 0, len(protoHeaders))
	for n := range protoHeaders {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Source is a running tracing capture: one program per hook, attached and
// writing into one shared ring. It implements bpfcap.Source. Close
// detaches everything.
type Source struct {
	*hook.Source
	notices io.Writer
	snaplen int
	pages   pageMap
	// paged counts records cut short by paged data that was not copied.
	paged atomic.Uint64
}

// Open parses and resolves every hook spec, then loads and attaches one
// program per hook. Nothing is loaded before every spec resolved, and
// whatever was attached is detached again when a later step fails.
//
// Errors name the problem and a way out: a malformed spec wraps
// ErrBadSpec, missing capabilities wrap ErrPrivilege, a kernel that lacks
// every kind of hook for a function wraps ErrNotSupported, a filter libpcap
// rejects carries libpcap's message.
func Open(opts Options) (*Source, error) {
	if len(opts.Hooks) == 0 {
		return nil, fmt.Errorf("trace: no hook given: name one such as kprobe:kfree_skb or tracepoint:net:net_dev_xmit (see `bpfcap list`)")
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
	ringOpts := opts.Ring
	if ringOpts.Notices == nil {
		ringOpts.Notices = opts.Notices
	}
	if ringOpts.MaxHooks < len(targets) {
		ringOpts.MaxHooks = max(64, len(targets))
	}
	ring, err := hook.NewRing(base, ringOpts)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	pages := findPageMap()
	var hooks []hook.Hook
	fail := func(err error) (*Source, error) {
		for i := len(hooks) - 1; i >= 0; i-- {
			for _, l := range hooks[i].Links {
				l.Close()
			}
			hooks[i].Program.Close()
		}
		ring.Close()
		return nil, err
	}
	for i, t := range targets {
		spec, progName, err := prepareSpec(base, t, header, pages)
		if err != nil {
			return fail(fmt.Errorf("trace: %w", err))
		}
		prog, err := hook.Load(spec, ring, hook.Options{
			Program:  progName,
			Hook:     i,
			Filter:   opts.Filter,
			Netmask:  opts.Netmask,
			LinkType: lt,
			Backend:  hook.Scratch,
			Snaplen:  opts.Snaplen,
			Ifindex:  ifindex,
			Netns:    netns,
			Task:     true,
			MaxRate:  opts.MaxRate,
		})
		if err != nil {
			return fail(explainLoad(t, err))
		}
		l, err := attach(t, prog.Program)
		if err != nil {
			prog.Close()
			return fail(err)
		}
		desc := "requested as " + t.Spec.String()
		if t.Note != "" {
			desc = t.Note
		}
		hooks = append(hooks, hook.Hook{
			Program:        prog,
			Links:          []io.Closer{l},
			Interface:      pcapng.Interface{Name: t.String(), Description: desc, LinkType: lt},
			ExtraLinkTypes: extra,
			VerdictType:    pcapng.VerdictNone,
			// Several raw IP interfaces make a file libpcap 1.10 refuses.
			CookRaw: lt == pcapng.LinkTypeRaw && len(targets) > 1,
		})
		if t.Note != "" && opts.Notices != nil {
			if opts.Verbose || t.Short == "" {
				fmt.Fprintf(opts.Notices, "bpfcap: %s\n", t.Note)
			} else {
				fmt.Fprintf(opts.Notices, "bpfcap: %s (-v: why)\n", t.Short)
			}
		}
	}
	src, err := hook.NewSource(ring, hooks, hook.SourceOptions{
		DropReason: reasons.Name,
		DeviceName: deviceName,
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	snap := opts.Snaplen
	if snap <= 0 || snap > hook.MaxData {
		snap = hook.MaxData
	}
	return &Source{Source: src, notices: opts.Notices, snaplen: snap, pages: pages}, nil
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

// chooseHeader maps the proto keyword to the probe's header setting, the
// hook's link type and the extra link types it may emit. Without proto,
// records start at the MAC header, so that a file holds one link type
// (tcpdump and libpcap 1.10 read no other); "auto" asks for several: the
// MAC header where the skb has one, else the network header as raw IP.
func chooseHeader(proto, filter string) (uint32, pcapng.LinkType, []pcapng.LinkType, error) {
	switch proto {
	case "":
		return headerEth, pcapng.LinkTypeEthernet, nil, nil
	case ProtoAuto:
		if filter != "" {
			return 0, 0, nil, fmt.Errorf("proto auto writes Ethernet and raw IP packets, and a filter is compiled for one of them: use proto eth or proto ip with a filter")
		}
		return headerAuto, pcapng.LinkTypeEthernet, []pcapng.LinkType{pcapng.LinkTypeRaw}, nil
	}
	h, ok := protoHeaders[proto]
	if !ok {
		return 0, 0, nil, fmt.Errorf("proto %q: tracing hooks capture from the skb's headers; use one of %s, or auto for several link types", proto, strings.Join(ProtoNames(), ", "))
	}
	return h.header, h.lt, nil, nil
}

// ProtoAuto is the `proto` keyword that asks for two link types in one
// file: Ethernet where the skb has a MAC header, raw IP elsewhere.
// Wireshark reads such a file; tcpdump and libpcap 1.10 do not.
const ProtoAuto = "auto"

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
			fmt.Fprintf(s.notices, "bpfcap: %d packets were captured up to the end of their linear data only: tracing hooks do not copy paged (fragment) data on this kernel (%s); their length is still the true one\n", n, s.pages.Reason)
		} else {
			fmt.Fprintf(s.notices, "bpfcap: %d packets were captured short of the snap length: tracing hooks copy linear data and paged frags, not a frag_list, device memory or frags past the 17th; their length is still the true one\n", n)
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
