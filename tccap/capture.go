package tccap

import (
	"fmt"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/perfring"
)

// Names in bpf/tc_capture.c.
const (
	captureProgram = "bpfcap_tc"
	dirVar         = "bpfcap_tc_dir"
)

// Options configure a tc capture.
type Options struct {
	hook.CaptureOptions
	// Directions to capture (nil: both).
	Directions []Direction
	// Mode is how to attach (ModeAuto: TCX where the kernel has it).
	Mode Mode
}

// Capture is a running tc capture: a bpfcap.Source (the embedded
// hook.Source), one pcapng interface per direction. Close detaches
// everything, removes a clsact qdisc Open created and frees the programs
// and the ring.
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
// ModeTCX; wrapping ErrNoTCX), missing privilege (wrapping
// hook.ErrPermission), or a filter libpcap rejects.
func Open(ifname string, opts Options) (_ *Capture, err error) {
	dirs := opts.Directions
	if len(dirs) == 0 {
		dirs = []Direction{Ingress, Egress}
	}
	l, err := hook.LookupDevice(ifname)
	if err != nil {
		return nil, err
	}
	ifindex := l.Attrs().Index
	lt := pcapng.LinkTypeEthernet
	if l.Attrs().EncapType == "none" || l.Type() == "tun" || l.Type() == "wireguard" {
		lt = pcapng.LinkTypeRaw // no link-layer header at tc
	}

	// The device's netns, for the events and the netns filter.
	netns, err := netnsfind.Inode("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("capture at tc on %s: %w", ifname, err)
	}
	spec, err := loadCapture()
	if err != nil {
		return nil, fmt.Errorf("load tc capture object: %w", err)
	}
	b, err := hook.NewBuilder(spec, opts.CaptureOptions)
	if err != nil {
		return nil, err
	}
	defer b.Rollback(&err)

	progs := make([]*hook.Program, len(dirs))
	for i, d := range dirs {
		s := spec.Copy()
		dir := uint32(perfring.DirIn)
		if d == Egress {
			dir = uint32(perfring.DirOut)
		}
		if err := s.Variables[dirVar].Set(dir); err != nil {
			return nil, fmt.Errorf("configure tc capture program: %w", err)
		}
		progs[i], err = b.Load(s, hook.Options{
			Program:  captureProgram,
			Hook:     i,
			LinkType: lt,
			Backend:  hook.Direct,
			Netns:    netns,
			// Inline the filter: no call and return per packet.
			InlineFilter: true,
		})
		if err != nil {
			return nil, err
		}
	}

	// One attacher serves every direction: it detaches them all and
	// removes the qdisc it created.
	att, err := newAttacher(ifindex, opts.Mode, opts.Ring.Notices)
	if err != nil {
		return nil, err
	}
	b.Detach(attacherCloser{att})
	for i, d := range dirs {
		if err := att.attach(progs[i].Program, d); err != nil {
			return nil, fmt.Errorf("capture at tc on %s: %w", ifname, err)
		}
	}
	for i, d := range dirs {
		b.Hook(hook.Hook{
			Programs: []*hook.Program{progs[i]},
			Interface: pcapng.Interface{
				Name:        HookSpec(ifname, d),
				Description: fmt.Sprintf("tc %s of %s (%s)", d, ifname, att.mode),
				MAC:         l.Attrs().HardwareAddr,
				Device:      ifname,
				Netns:       netns,
			},
			VerdictType: pcapng.VerdictNone,
		})
	}
	if err := b.LearnOwners(); err != nil {
		return nil, fmt.Errorf("capture at tc on %s: %w", ifname, err)
	}
	watch, err := hook.WatchDevice(ifindex, ifname)
	if err != nil {
		return nil, err
	}
	b.OnClose(watch)
	// Packets come from this one interface, whatever netns the reader
	// runs in.
	src, err := b.Source(hook.SourceOptions{DeviceName: hook.OneDevice(ifindex, ifname)})
	if err != nil {
		return nil, err
	}
	inlined := true
	for _, p := range progs {
		inlined = inlined && p.Inlined
	}
	return &Capture{Source: src, Mode: att.mode, FilterInlined: inlined, watch: watch}, nil
}

// Alive returns an error wrapping hook.ErrGone once the interface was
// deleted (bpfcap.LivenessChecker).
func (c *Capture) Alive() error { return c.watch.Alive() }

// attacherCloser detaches everything an attacher attached, as a link.
type attacherCloser struct{ a *attacher }

// Close detaches every direction and removes a qdisc bpfcap created.
func (c attacherCloser) Close() error { return c.a.close() }
