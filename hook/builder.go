package hook

import (
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
)

// CaptureOptions are the options every kernel capture site takes;
// probe.Options, tccap.Options and xdpcap.CaptureOptions embed them.
type CaptureOptions struct {
	// Filter is a tcpdump filter expression ("" captures everything).
	Filter string
	// Netmask is the IPv4 netmask, host byte order, that `ip broadcast`
	// uses (0: as tcpdump -r; a live tcpdump uses the device's,
	// filter.DeviceNetmask).
	Netmask uint32
	// Snaplen is the number of bytes to capture per packet (0: 65536).
	Snaplen int
	// CountSeen counts every packet that reaches a program (the "seen"
	// statistic) at the price of a per-CPU map update per packet; without
	// it only matching packets touch a map. Tracing hooks always count.
	CountSeen bool
	// SeenHint follows SeenNotCountedNote in parentheses in the description
	// of a hook that does not count the packets it sees: how to count
	// them, in the caller's words ("" adds nothing).
	SeenHint string
	// MaxRate bounds the packets each program captures per CPU and
	// second (0: unbounded); the kernel sheds the rest after the filter,
	// before copying them, and counts them (StatShed).
	MaxRate int
	// Want restricts the capture by process, netns and mark, in the
	// kernel before packets are copied; packets are attributed to their
	// socket's owner where the site calls Builder.LearnOwners.
	Want MetaFilter
	// Ring configures the transport (buffer size, perf) and where notices
	// for the user go (Ring.Notices: one line each, without a prefix; nil
	// discards them).
	Ring RingOptions
}

// SeenNotCountedNote is what an interface description says when its hook
// does not count the packets it sees (CaptureOptions.CountSeen unset).
const SeenNotCountedNote = "packets seen are not counted"

// Builder builds one kernel capture source. It creates the ring, loads
// the programs (Load), keeps what the site attaches (Hook, Detach,
// OnClose) and hands it all to a Source (Source). Until Source succeeds
// the Builder owns everything; Close then releases it all, in reverse
// order, so a site defers Rollback (or Close) once right after NewBuilder
// and returns on any error:
//
//	b, err := hook.NewBuilder(spec, opts.CaptureOptions)
//	if err != nil { return nil, err }
//	defer b.Rollback(&err)
//	p, err := b.Load(spec, hook.Options{Program: "...", Backend: hook.Direct})
//	if err != nil { return nil, err }
//	l, err := link.AttachXDP(...)
//	if err != nil { return nil, err }
//	b.Hook(hook.Hook{Programs: []*hook.Program{p}, Links: []io.Closer{l}, ...})
//	src, err := b.Source(hook.SourceOptions{...})
type Builder struct {
	opts    CaptureOptions
	ring    *Ring
	progs   []*Program // loaded, not yet in a hook
	hooks   []Hook
	links   []io.Closer // detached with the hooks, after their own links
	closers []io.Closer // closed last
	built   bool
}

// NewBuilder creates the ring of a capture session from the map
// definitions in spec (any object that includes capture.h).
func NewBuilder(spec *ebpf.CollectionSpec, opts CaptureOptions) (*Builder, error) {
	ring, err := NewRing(spec, opts.Ring)
	if err != nil {
		return nil, err
	}
	return &Builder{opts: opts, ring: ring}, nil
}

// Ring returns the session's ring.
func (b *Builder) Ring() *Ring { return b.ring }

// Options returns the options the builder was made with.
func (b *Builder) Options() CaptureOptions { return b.opts }

// Load loads program o.Program of spec for the session (see the
// package-level Load); the filter, netmask, snap length and seen counting
// come from the builder's CaptureOptions. The builder owns the program:
// pass it to Hook.
func (b *Builder) Load(spec *ebpf.CollectionSpec, o Options) (*Program, error) {
	o.Filter, o.Netmask, o.Snaplen, o.CountSeen = b.opts.Filter, b.opts.Netmask, b.opts.Snaplen, b.opts.CountSeen
	o.Want, o.MaxRate = b.opts.Want, b.opts.MaxRate
	p, err := Load(spec, b.ring, o)
	if err != nil {
		return nil, err
	}
	b.progs = append(b.progs, p)
	return p, nil
}

// Hook adds a capture point: its Programs (from Load) and Links (what
// attached them) belong to the builder from now on. Hook marks it as not
// counting the packets it sees unless CaptureOptions.CountSeen is set,
// and says so in its description.
func (b *Builder) Hook(h Hook) {
	for _, p := range h.Programs {
		for i, q := range b.progs {
			if q == p {
				b.progs = append(b.progs[:i], b.progs[i+1:]...)
				break
			}
		}
	}
	if !b.opts.CountSeen {
		note := SeenNotCountedNote
		if b.opts.SeenHint != "" {
			note += " (" + b.opts.SeenHint + ")"
		}
		h.SeenNotCounted = true
		h.Interface.Description = joinNonEmpty(h.Interface.Description, note)
	}
	b.hooks = append(b.hooks, h)
}

// Detach adds an attachment that serves several hooks (e.g. one netlink
// handle and qdisc for both tc directions): it is closed when the capture
// stops, after every hook's own links.
func (b *Builder) Detach(c io.Closer) { b.links = append(b.links, c) }

// LearnOwners attaches the socket-owner learner (Ring.LearnOwners) for
// as long as the capture runs, so packets are attributed to the process
// that owns their socket. When it cannot attach, the capture goes on
// without owners (a notice says why) unless CaptureOptions.Want selects
// packets by owner: then the error is returned, wrapping
// ErrOwnersUnknown.
func (b *Builder) LearnOwners() error {
	learner, err := b.ring.LearnOwners()
	if err == nil {
		b.Detach(learner)
		return nil
	}
	if b.opts.Want.Owner() {
		return fmt.Errorf("%w: %w", ErrOwnersUnknown, err)
	}
	if b.opts.Ring.Notices != nil {
		fmt.Fprintf(b.opts.Ring.Notices, "packets are not attributed to processes: %v\n", err)
	}
	return nil
}

// ErrOwnersUnknown is wrapped by errors of captures that select packets by
// their socket's owner (MetaFilter.PID, Comm, Cgroup) where the kernel
// would not let bpfcap learn the owners.
var ErrOwnersUnknown = errors.New("the pid, comm and cgroup filters need the socket owners")

// OnClose adds something closed when the source closes, after the links,
// the programs and the ring (e.g. a map the hooks were put into).
func (b *Builder) OnClose(c io.Closer) { b.closers = append(b.closers, c) }

// Source hands everything to a new Source. On success the builder owns
// nothing any more and Close does nothing; on failure everything was
// released.
func (b *Builder) Source(opts SourceOptions) (*Source, error) {
	if len(b.progs) > 0 {
		return nil, fmt.Errorf("capture source: %d loaded programs were not given to a hook", len(b.progs))
	}
	b.built = true
	s, err := newSource(b.ring, b.hooks, opts, b.links, b.closers)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Rollback is Close for a deferred call in a function with a named error
// result: it joins Close's error into *err.
//
//	defer b.Rollback(&err)
func (b *Builder) Rollback(err *error) { *err = errors.Join(*err, b.Close()) }

// Close releases everything the builder owns unless Source succeeded:
// the links (hooks in reverse order, then the shared ones), the programs,
// the ring and what OnClose added.
func (b *Builder) Close() error {
	if b.built {
		return nil
	}
	b.built = true
	var errs []error
	for i := len(b.hooks) - 1; i >= 0; i-- {
		errs = append(errs, closeAll(b.hooks[i].Links))
	}
	errs = append(errs, closeAll(b.links))
	for i := len(b.hooks) - 1; i >= 0; i-- {
		for _, p := range b.hooks[i].Programs {
			errs = append(errs, p.Close())
		}
	}
	for _, p := range b.progs {
		errs = append(errs, p.Close())
	}
	errs = append(errs, b.ring.Close(), closeAll(b.closers))
	return errors.Join(errs...)
}

// closeAll closes cs in reverse order.
func closeAll(cs []io.Closer) error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		errs = append(errs, cs[i].Close())
	}
	return errors.Join(errs...)
}

// OneDevice names the packets of a capture of one device: ifindex is
// name, in whatever network namespace the reader runs; other indexes get
// no name (SourceOptions.DeviceName).
func OneDevice(ifindex int, name string) func(ifindex, netns uint32) string {
	return func(idx, _ uint32) string {
		if idx == uint32(ifindex) {
			return name
		}
		return ""
	}
}
