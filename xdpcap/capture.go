package xdpcap

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/pcapng"
)

// Names in bpf/xdp_capture.c.
const (
	captureProgram = "bpfcap_xdp"
	actionVar      = "bpfcap_xdp_action"
	flagsVar       = "bpfcap_xdp_flags"

	xdpFlagFrags      = 1 << 0 // BPFCAP_XDP_FRAGS
	xdpFlagEntry      = 1 << 1 // BPFCAP_XDP_ENTRY
	xdpFlagReadKernel = 1 << 2 // BPFCAP_XDP_READ_KERNEL
)

// ErrBusy is returned (wrapped) when a hook slot bpfcap wants holds a
// program that a running process still holds: another capture is running.
var ErrBusy = errors.New("hook is in use by another capture")

// NoSlotError says a hook has no slot for an action: it has fewer slots
// than there are actions (the 4-slot layout before XDP_REDIRECT).
type NoSlotError struct {
	Pin    string
	Slots  int
	Action Action
}

// Error names the hook, its number of slots and the action.
func (e *NoSlotError) Error() string {
	return fmt.Sprintf("hook %s has %d slots: it cannot capture %s", e.Pin, e.Slots, e.Action.KernelName())
}

// CaptureOptions configure a capture from a hook or an interface.
type CaptureOptions struct {
	hook.CaptureOptions
	// Actions are the XDP actions to capture (hook captures); nil means
	// every action the hook has a slot for.
	Actions []Action
	// Ifindex restricts a hook capture to packets received on this
	// interface (0: any).
	Ifindex int
	// FilterInStub keeps the kernel filter in its stub subprogram, called
	// once per packet, instead of inlining it into the capture program
	// (hook.Options.InlineFilter), which is the default because it saves
	// a call and return per packet. For comparisons: the benchmarks
	// measure both.
	FilterInStub bool
}

// Capture is a running XDP capture: a bpfcap.Source (the embedded
// hook.Source) plus what it found about the hook. Close detaches and
// frees everything: the hook slots are emptied (only those that still
// hold this capture's programs).
type Capture struct {
	*hook.Source
	// Target is how the capture programs were loaded to match the hook's
	// owner (hook captures).
	Target Target
	// Actions are the actions captured (hook captures).
	Actions []Action
	// FilterInlined is true when the kernel filter runs inlined in every
	// capture program (no call per packet); false without a filter, with
	// CaptureOptions.FilterInStub, or when Load fell back to the stub or
	// to filtering in userspace.
	FilterInlined bool

	hook     *Hook
	aliveMu  sync.Mutex
	hookUsed bool // a program was seen using the hook (Alive)
}

// slotLink empties a hook slot that bpfcap filled when the capture stops.
type slotLink struct {
	hook   *Hook
	action Action
	id     ebpf.ProgramID
}

// Close empties the slot if it still holds this capture's program.
func (l *slotLink) Close() error { return l.hook.ClearIf(l.action, l.id) }

// HookSpec returns the hook spec of a pinned hook as it names the pcapng
// interface: "xdp:" and the pin path.
func HookSpec(pin string) string { return "xdp:" + pin }

// OpenCapture starts capturing from the hook pinned at pin: it loads one
// capture program per action, each returning its action, with the filter
// spliced in, and puts them into the hook's slots. Slots left full by a
// killed capture are emptied first (with a notice); slots another running
// capture holds make it fail with ErrBusy. Nothing is left in the hook when
// it fails.
//
// Errors wrap ErrNotHook (not a hook), ErrNoOwner (no program uses the
// hook yet), ErrBusy, os.ErrNotExist (no such pin) or hook.ErrPermission,
// or are a *NoSlotError.
func OpenCapture(pin string, opts CaptureOptions) (_ *Capture, err error) {
	b, spec, flags, err := newBuilder(opts)
	if err != nil {
		return nil, err
	}
	defer b.Rollback(&err)
	h, err := OpenHook(pin)
	if err != nil {
		return nil, err
	}
	b.OnClose(h)

	actions := opts.Actions
	if len(actions) == 0 {
		actions = Actions()[:h.NumSlots()]
	}
	for _, a := range actions {
		if int(a) >= h.NumSlots() {
			return nil, &NoSlotError{Pin: pin, Slots: h.NumSlots(), Action: a}
		}
	}
	if err := clearStale(h, pin, actions, opts.Ring.Notices); err != nil {
		return nil, err
	}
	target, err := h.TargetAttrs(actions[0])
	if err != nil {
		return nil, fmt.Errorf("hook %s: %w", pin, err)
	}
	if target.Frags {
		flags |= xdpFlagFrags
	}
	progs := make([]*hook.Program, len(actions))
	for i, a := range actions {
		if progs[i], err = loadXDPProgram(b, spec, opts, a, flags, target); err != nil {
			return nil, err
		}
	}
	// Everything is loaded: fill the slots. From here a failure empties
	// the slots filled so far (the builder detaches them).
	for i, a := range actions {
		info, err := progs[i].Program.Info()
		var id ebpf.ProgramID
		if err == nil {
			id, _ = info.ID()
			err = h.Set(a, progs[i].Program)
		}
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", pin, err)
		}
		b.Detach(&slotLink{hook: h, action: a, id: id})
	}

	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.String()
	}
	b.Hook(hook.Hook{
		Programs: progs,
		Interface: pcapng.Interface{
			Name:        HookSpec(pin),
			Description: fmt.Sprintf("XDP tail-call hook %s, actions %s (%s)", pin, strings.Join(names, ","), target),
			LinkType:    pcapng.LinkTypeEthernet,
		},
		VerdictType: pcapng.VerdictXDP,
	})
	src, err := b.Source(hook.SourceOptions{DeviceName: h.deviceName})
	if err != nil {
		return nil, err
	}
	return &Capture{Source: src, Target: target, Actions: actions, FilterInlined: allInlined(progs), hook: h}, nil
}

// newBuilder starts a capture session on the XDP capture object; flags
// are the copy flags this kernel needs (copyFlags).
func newBuilder(opts CaptureOptions) (*hook.Builder, *ebpf.CollectionSpec, uint32, error) {
	flags, err := copyFlags()
	if err != nil {
		return nil, nil, 0, err
	}
	spec, err := loadCapture()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("load XDP capture object: %w", err)
	}
	b, err := hook.NewBuilder(spec, opts.CaptureOptions)
	if err != nil {
		return nil, nil, 0, err
	}
	return b, spec, flags, nil
}

// loadXDPProgram loads the capture program for action a.
func loadXDPProgram(b *hook.Builder, spec *ebpf.CollectionSpec, opts CaptureOptions, a Action, flags uint32, target Target) (*hook.Program, error) {
	spec = spec.Copy()
	if err := spec.Variables[actionVar].Set(uint32(a)); err != nil {
		return nil, fmt.Errorf("configure XDP capture program: %w", err)
	}
	if err := spec.Variables[flagsVar].Set(flags); err != nil {
		return nil, fmt.Errorf("configure XDP capture program: %w", err)
	}
	target.Apply(spec.Programs[captureProgram])
	return b.Load(spec, hook.Options{
		Program:  captureProgram,
		Hook:     0,
		LinkType: pcapng.LinkTypeEthernet,
		Backend:  hook.Direct,
		Ifindex:  uint32(opts.Ifindex),
		MaxRate:  opts.MaxRate,
		// The non-matching path is the hook's cost to the instrumented
		// program: no call and return for the filter.
		InlineFilter: !opts.FilterInStub,
	})
}

// allInlined reports whether every program runs its filter inlined.
func allInlined(progs []*hook.Program) bool {
	for _, p := range progs {
		if !p.Inlined {
			return false
		}
	}
	return len(progs) > 0
}

// clearStale empties the slots whose programs nobody holds any more (left
// by a capture that was killed), with a notice, and fails with ErrBusy if
// one of the wanted slots is held by a running process.
func clearStale(h *Hook, pin string, actions []Action, notices io.Writer) error {
	occ, err := h.Occupants()
	if err != nil {
		return fmt.Errorf("hook %s: %w", pin, err)
	}
	want := make(map[Action]bool)
	for _, a := range actions {
		want[a] = true
	}
	for _, o := range occ {
		if o.Stale() || !want[o.Action] {
			continue
		}
		holders := make([]string, len(o.Holders))
		for i, hd := range o.Holders {
			holders[i] = hd.String()
		}
		return fmt.Errorf("hook %s: slot %s holds program %d (%s) of %s: %w",
			pin, o.Action, o.ID, o.Name, strings.Join(holders, ", "), ErrBusy)
	}
	for _, o := range occ {
		if !o.Stale() {
			continue
		}
		if err := h.ClearIf(o.Action, o.ID); err != nil {
			return fmt.Errorf("hook %s: %w", pin, err)
		}
		if notices != nil {
			fmt.Fprintf(notices, "hook %s: emptied slot %s, left full by a capture that did not exit cleanly (program %d %s)\n",
				pin, o.Action, o.ID, o.Name)
		}
	}
	return nil
}

// deviceName names the device ifindex for packets from the hook: the
// interface of that index whose XDP program uses this hook, in bpfcap's
// network namespace or else in the one other namespace where there is such
// an interface; "" (the index) when there is none or several, rather than
// the name of an unrelated device with the same index.
func (h *Hook) deviceName(ifindex, _ uint32) string {
	info, err := h.m.Info()
	if err != nil {
		return ""
	}
	hookID, ok := info.ID()
	if !ok {
		return ""
	}
	if l, err := netlink.LinkByIndex(int(ifindex)); err == nil && usesHook(l, hookID) {
		return l.Attrs().Name
	}
	// The program may run in another namespace (a container's, a test's):
	// look for the device there, and name it only when one namespace's
	// device with this ifindex runs a program using this hook.
	var names []string
	for _, ns := range netnsfind.All() {
		l, err := netnsfind.LinkIn(ns.Path, int(ifindex))
		if err == nil && usesHook(l, hookID) {
			names = append(names, l.Attrs().Name)
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return ""
}

// usesHook reports whether l's XDP program uses the hook map hookID.
func usesHook(l netlink.Link, hookID ebpf.MapID) bool {
	if l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached {
		return false
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(l.Attrs().Xdp.ProgId))
	if err != nil {
		return false
	}
	defer p.Close()
	pinfo, err := p.Info()
	if err != nil {
		return false
	}
	ids, _ := pinfo.MapIDs()
	return slices.Contains(ids, hookID)
}
