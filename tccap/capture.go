package tccap

import (
	"errors"
	"fmt"
	"io"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/pcapng"
)

// Names in bpf/tc_capture.c.
const (
	captureProgram = "bpfcap_tc"
	dirVar         = "bpfcap_tc_dir"
	seenVar        = "bpfcap_tc_count_seen"
)

// Options configure a tc capture.
type Options struct {
	// Directions to capture (nil: both).
	Directions []Direction
	// Mode is how to attach (ModeAuto: TCX where the kernel has it).
	Mode Mode
	// Filter is a tcpdump filter expression ("" captures everything).
	Filter string
	// Netmask is the IPv4 netmask, host byte order, that `ip broadcast`
	// uses (0: as tcpdump -r; a live tcpdump uses the device's,
	// filter.DeviceNetmask).
	Netmask uint32
	// Snaplen is the number of bytes to capture per packet (0: 65536).
	Snaplen int
	// Ring configures the transport (buffer size, perf, notices).
	Ring hook.RingOptions
	// MaxRate bounds the packets each direction captures per CPU and
	// second (0: unbounded); the kernel sheds the rest before copying
	// them and counts them (pcapng.InterfaceStats.Shed).
	MaxRate int
	// CountSeen counts every packet that reaches the program (the "seen"
	// statistic) at the price of a per-CPU map update per packet.
	CountSeen bool
	// Notices receives one-line notices for the user, such as the removal
	// of a filter a killed bpfcap left behind (nil: discarded).
	Notices io.Writer
}

// Capture is a running tc capture: a bpfcap.Source (the embedded
// hook.Source), one pcapng interface per direction.
type Capture struct {
	*hook.Source
	// Mode is how the programs were attached: ModeTCX or ModeClsact.
	Mode Mode
	// FilterInlined is true when the kernel filter runs inlined in every
	// direction's program (no call per packet); false without a filter or
	// when Load fell back to the filter's stub or to userspace.
	FilterInlined bool

	watch *hook.DeviceWatch
}

// HookSpec names the capture point of ifname in direction dir as pcapng
// interfaces show it: "tc:eth0:ingress".
func HookSpec(ifname string, dir Direction) string { return "tc:" + ifname + ":" + dir.String() }

// Open starts capturing at tc on the interface ifname (in the calling
// thread's network namespace). Close detaches everything and removes a
// clsact qdisc Open created.
//
// Errors name the problem: no such interface, no TCX in the kernel (with
// ModeTCX: use ModeClsact), missing privilege (wrapping hook.ErrPermission
// for loads), or a filter libpcap rejects.
func Open(ifname string, opts Options) (*Capture, error) {
	dirs := opts.Directions
	if len(dirs) == 0 {
		dirs = []Direction{Ingress, Egress}
	}
	l, err := hook.LookupDevice(ifname)
	if err != nil {
		return nil, err
	}
	lt := pcapng.LinkTypeEthernet
	if l.Attrs().EncapType == "none" || l.Type() == "tun" || l.Type() == "wireguard" {
		lt = pcapng.LinkTypeRaw // no link-layer header at tc
	}

	spec, err := loadCapture()
	if err != nil {
		return nil, fmt.Errorf("load tc capture object: %w", err)
	}
	ring, err := hook.NewRing(spec, opts.Ring)
	if err != nil {
		return nil, err
	}
	var progs []*hook.Program
	fail := func(err error) (*Capture, error) {
		for _, p := range progs {
			p.Close()
		}
		ring.Close()
		return nil, err
	}
	for i, d := range dirs {
		s := spec.Copy()
		dir := uint32(1) // BPFCAP_DIR_IN
		if d == Egress {
			dir = 2 // BPFCAP_DIR_OUT
		}
		if err := s.Variables[dirVar].Set(dir); err != nil {
			return fail(fmt.Errorf("configure tc capture program: %w", err))
		}
		seen := uint32(0)
		if opts.CountSeen {
			seen = 1
		}
		if err := s.Variables[seenVar].Set(seen); err != nil {
			return fail(fmt.Errorf("configure tc capture program: %w", err))
		}
		p, err := hook.Load(s, ring, hook.Options{
			Program:  captureProgram,
			Hook:     i,
			Filter:   opts.Filter,
			Netmask:  opts.Netmask,
			LinkType: lt,
			Backend:  hook.Direct,
			Snaplen:  opts.Snaplen,
			MaxRate:  opts.MaxRate,
			// Inline the filter: no call and return per packet.
			InlineFilter: true,
		})
		if err != nil {
			return fail(err)
		}
		progs = append(progs, p)
	}

	att, err := newAttacher(l.Attrs().Index, opts.Mode, opts.Notices)
	if err != nil {
		return fail(err)
	}
	for i, d := range dirs {
		if err := att.attach(progs[i].Program, d); err != nil {
			if cerr := att.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return fail(fmt.Errorf("capture at tc on %s: %w", ifname, err))
		}
	}
	hooks := make([]hook.Hook, len(dirs))
	for i, d := range dirs {
		hooks[i] = hook.Hook{
			Program: progs[i],
			Interface: pcapng.Interface{
				Name:        HookSpec(ifname, d),
				Description: fmt.Sprintf("tc %s of %s (%s)%s", d, ifname, att.mode, seenNote(opts.CountSeen)),
				MAC:         l.Attrs().HardwareAddr,
			},
			VerdictType:    pcapng.VerdictNone,
			SeenNotCounted: !opts.CountSeen,
		}
	}
	// The first hook's links are closed last: the attacher detaches every
	// direction and removes the qdisc it created.
	hooks[0].Links = []io.Closer{attacherCloser{att}}
	ifindex := uint32(l.Attrs().Index)
	src, err := hook.NewSource(ring, hooks, hook.SourceOptions{
		// Packets come from this one interface, whatever netns the
		// reader runs in.
		DeviceName: func(idx, _ uint32) string {
			if idx == ifindex {
				return ifname
			}
			return ""
		},
	})
	if err != nil {
		return nil, err
	}
	inlined := true
	for _, p := range progs {
		inlined = inlined && p.Inlined
	}
	watch, err := hook.WatchDevice(l.Attrs().Index, ifname)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &Capture{Source: src, Mode: att.mode, FilterInlined: inlined, watch: watch}, nil
}

// Alive returns an error wrapping hook.ErrGone once the interface was
// deleted (bpfcap.LivenessChecker).
func (c *Capture) Alive() error { return c.watch.Alive() }

// Close detaches everything, removes a clsact qdisc Open created and
// frees the programs and the ring.
func (c *Capture) Close() error {
	err := c.Source.Close()
	c.watch.Close()
	return err
}

// attacherCloser detaches everything an attacher attached, as a link.
type attacherCloser struct{ a *attacher }

// Close detaches every direction and removes a qdisc bpfcap created.
func (c attacherCloser) Close() error { return c.a.close() }

// seenNote says in an interface description when packets seen are not
// counted (counting costs a map update per packet).
func seenNote(counted bool) string {
	if counted {
		return ""
	}
	return "; packets seen are not counted (--count-seen counts them)"
}
