package tccap

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
)

// Mode is how the program is attached.
type Mode int

const (
	// ModeAuto uses TCX where the kernel has it, clsact otherwise.
	ModeAuto Mode = iota
	// ModeTCX attaches with TCX links (Linux 6.6).
	ModeTCX
	// ModeClsact attaches a direct-action cls_bpf filter to a clsact qdisc,
	// creating the qdisc if the interface has none.
	ModeClsact
)

// String returns the mode's name as ParseMode takes it.
func (m Mode) String() string {
	switch m {
	case ModeTCX:
		return "tcx"
	case ModeClsact:
		return "clsact"
	}
	return "auto"
}

// ParseMode parses "auto", "tcx" or "clsact".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return ModeAuto, nil
	case "tcx":
		return ModeTCX, nil
	case "clsact":
		return ModeClsact, nil
	}
	return 0, fmt.Errorf("unknown tc mode %q: use tcx, clsact or auto", s)
}

// Direction is where on the interface a program sees packets.
type Direction int

const (
	// Ingress is packets the interface receives.
	Ingress Direction = iota
	// Egress is packets the interface sends.
	Egress
)

// String returns "ingress" or "egress".
func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// ParseDirections parses "ingress", "egress" or "both".
func ParseDirections(s string) ([]Direction, error) {
	switch strings.ToLower(s) {
	case "ingress", "in":
		return []Direction{Ingress}, nil
	case "egress", "out":
		return []Direction{Egress}, nil
	case "both", "":
		return []Direction{Ingress, Egress}, nil
	}
	return nil, fmt.Errorf("unknown tc direction %q: use ingress, egress or both", s)
}

// ErrNoTCX is wrapped by the error of a ModeTCX capture on a kernel
// without TCX (before Linux 6.6); ModeClsact works there.
var ErrNoTCX = errors.New("this kernel has no TCX (needs Linux 6.6)")

// attachment is one attached program: a TCX link or a cls_bpf filter.
type attachment struct {
	link   link.Link          // TCX
	filter *netlink.BpfFilter // clsact
}

// attacher attaches programs to one interface and undoes it all on close.
type attacher struct {
	nl           *netlink.Handle
	ifindex      int
	mode         Mode // resolved: ModeTCX or ModeClsact
	createdQdisc bool
	attachments  []attachment
	notices      io.Writer // nil: discarded
}

// newAttacher opens a netlink handle in the calling thread's netns.
func newAttacher(ifindex int, mode Mode, notices io.Writer) (*attacher, error) {
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &attacher{nl: nl, ifindex: ifindex, mode: mode, notices: notices}, nil
}

// attach attaches prog in direction dir. In ModeAuto the first attach picks
// TCX and falls back to clsact if the kernel has no TCX.
func (a *attacher) attach(prog *ebpf.Program, dir Direction) error {
	if a.mode == ModeAuto || a.mode == ModeTCX {
		at := ebpf.AttachTCXIngress
		if dir == Egress {
			at = ebpf.AttachTCXEgress
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: a.ifindex, Program: prog, Attach: at})
		if err == nil {
			a.mode = ModeTCX
			a.attachments = append(a.attachments, attachment{link: l})
			return nil
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return &hook.PermissionError{Op: "attach tcx " + dir.String(), Needs: "CAP_NET_ADMIN and CAP_BPF, or root", Err: err}
		}
		if a.mode == ModeTCX || !errors.Is(err, ebpf.ErrNotSupported) {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return fmt.Errorf("attach tcx %s: %w: %w", dir, ErrNoTCX, err)
			}
			return fmt.Errorf("attach tcx %s: %w", dir, err)
		}
		a.mode = ModeClsact
	}
	return a.attachClsact(prog, dir)
}

// attachClsact adds prog as a direct-action cls_bpf filter in front of the
// interface's other filters, creating the clsact qdisc if needed.
func (a *attacher) attachClsact(prog *ebpf.Program, dir Direction) error {
	if !a.createdQdisc {
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{
				LinkIndex: a.ifindex,
				Handle:    netlink.MakeHandle(0xffff, 0),
				Parent:    netlink.HANDLE_CLSACT,
			},
			QdiscType: "clsact",
		}
		switch err := a.nl.QdiscAdd(q); {
		case err == nil:
			a.createdQdisc = true
		case errors.Is(err, unix.EEXIST):
			// The interface has a clsact qdisc already: share it, keep it.
		case errors.Is(err, unix.EPERM):
			return &hook.PermissionError{Op: "add clsact qdisc", Needs: "CAP_NET_ADMIN or root", Err: err}
		default:
			return fmt.Errorf("add clsact qdisc to ifindex %d: %w", a.ifindex, err)
		}
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if dir == Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	if !a.createdQdisc {
		if err := a.removeStale(parent, a.notices); err != nil {
			return err
		}
	}
	prio, err := a.freePriority(parent)
	if err != nil {
		return err
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: a.ifindex,
			Parent:    parent,
			Handle:    1,
			Priority:  prio,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         filterName,
		DirectAction: true,
	}
	if err := a.nl.FilterAdd(f); err != nil {
		if errors.Is(err, unix.EPERM) {
			return &hook.PermissionError{Op: "add cls_bpf filter at " + dir.String(), Needs: "CAP_NET_ADMIN or root", Err: err}
		}
		return fmt.Errorf("add cls_bpf filter at %s: %w", dir, err)
	}
	a.attachments = append(a.attachments, attachment{filter: f})
	return nil
}

// freePriority returns the lowest filter priority not in use at parent, so
// the capture filter runs before the others (it never decides the packet's
// fate, so they still see every packet).
func (a *attacher) freePriority(parent uint32) (uint16, error) {
	l := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: a.ifindex}}
	filters, err := a.nl.FilterList(l, parent)
	if err != nil {
		return 0, fmt.Errorf("list tc filters: %w", err)
	}
	used := make(map[uint16]bool)
	for _, f := range filters {
		used[f.Attrs().Priority] = true
	}
	for p := uint16(1); p < 0xffff; p++ {
		if !used[p] {
			return p, nil
		}
	}
	return 0, errors.New("no free tc filter priority")
}

// close detaches everything, removes a clsact qdisc it created, and closes
// the netlink handle.
func (a *attacher) close() error {
	var errs []error
	for _, at := range a.attachments {
		if at.link != nil {
			if err := at.link.Close(); err != nil {
				errs = append(errs, fmt.Errorf("detach tcx link: %w", err))
			}
		}
		if at.filter != nil {
			if err := a.nl.FilterDel(at.filter); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete cls_bpf filter: %w", err))
			}
		}
	}
	a.attachments = nil
	if a.createdQdisc {
		q := &netlink.GenericQdisc{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: a.ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
			QdiscType:  "clsact",
		}
		if err := a.nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("remove the clsact qdisc bpfcap added: %w", err))
		}
		a.createdQdisc = false
	}
	a.nl.Close()
	return errors.Join(errs...)
}
