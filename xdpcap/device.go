package xdpcap

import (
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/pcapng"
)

// ErrHasProgram is returned (wrapped) by OpenDeviceCapture for an
// interface that already runs an XDP program.
var ErrHasProgram = errors.New("the interface already has an XDP program")

// DeviceSpec returns the hook spec of an interface capture: "xdp:dev:" and
// the interface name.
func DeviceSpec(ifname string) string { return "xdp:dev:" + ifname }

// OpenDeviceCapture captures at XDP entry of the interface ifname (in the
// calling thread's network namespace). Where the interface has no XDP
// program, bpfcap attaches its own, which passes every packet, and detaches
// it on Close; packets carry no verdict. Where it runs one, bpfcap attaches
// an fexit program to it (kernels that allow tracing BPF programs, 5.5+)
// and captures each packet as the program leaves it, with its verdict; a
// kernel that refuses gives a *HasProgramError (matching ErrHasProgram).
// opts.Actions is ignored.
func OpenDeviceCapture(ifname string, opts CaptureOptions) (_ *Capture, err error) {
	l, err := hook.LookupDevice(ifname)
	if err != nil {
		return nil, err
	}
	ifindex := l.Attrs().Index
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		// Capture inside the program with fexit where the kernel allows.
		id := ebpf.ProgramID(x.ProgId)
		c, err := openFexitCapture(ifname, ifindex, id, opts)
		if err == nil {
			if opts.Ring.Notices != nil {
				fmt.Fprintf(opts.Ring.Notices, "%s runs XDP program %d: capturing its packets and verdicts with fexit (first buffer of each packet)\n", ifname, id)
			}
			return c, nil
		}
		return nil, hasProgramError(ifname, id, err)
	}

	b, spec, flags, err := newBuilder(opts)
	if err != nil {
		return nil, err
	}
	defer b.Rollback(&err)
	p, err := loadXDPProgram(b, spec, opts, Pass, flags|xdpFlagEntry, Target{AttachType: ebpf.AttachXDP})
	if err != nil {
		return nil, err
	}
	lk, err := link.AttachXDP(link.XDPOptions{Program: p.Program, Interface: ifindex})
	switch {
	case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST):
		return nil, hasProgramError(ifname, 0, nil)
	case errors.Is(err, unix.EPERM):
		return nil, &hook.PermissionError{Op: "attach XDP to " + ifname, Needs: "CAP_NET_ADMIN and CAP_BPF, or root", Err: err}
	case err != nil:
		return nil, fmt.Errorf("attach XDP to %s: %w", ifname, err)
	}
	b.Hook(hook.Hook{
		Programs: []*hook.Program{p},
		Links:    []io.Closer{lk},
		Interface: pcapng.Interface{
			Name:        DeviceSpec(ifname),
			Description: fmt.Sprintf("XDP entry of %s (bpfcap's own pass-through program)", ifname),
			LinkType:    pcapng.LinkTypeEthernet,
			MAC:         l.Attrs().HardwareAddr,
			Device:      ifname,
		},
		VerdictType: pcapng.VerdictNone,
	})
	src, err := b.Source(hook.SourceOptions{DeviceName: hook.OneDevice(ifindex, ifname)})
	if err != nil {
		return nil, err
	}
	return &Capture{Source: src, FilterInlined: p.Inlined}, nil
}

// HasProgramError says that an interface runs an XDP program that bpfcap
// neither replaces nor could trace with fexit. It matches ErrHasProgram.
type HasProgramError struct {
	// Ifname is the interface.
	Ifname string
	// ProgID and ProgName name its XDP program (0 and "" when unknown).
	ProgID   ebpf.ProgramID
	ProgName string
	// FexitErr is why capturing inside it with fexit failed (nil: not
	// tried).
	FexitErr error
}

// Error says which program runs there and why bpfcap could not capture
// inside it.
func (e *HasProgramError) Error() string {
	what := "an XDP program"
	if e.ProgID != 0 {
		what = fmt.Sprintf("XDP program %d", e.ProgID)
		if e.ProgName != "" {
			what += " (" + e.ProgName + ")"
		}
	}
	tracing := "capturing inside it with fentry/fexit: not tried"
	if e.FexitErr != nil {
		tracing = "capturing inside it with fentry/fexit: " + errFexitRefused(e.FexitErr) + ", so bpfcap cannot capture inside that program here"
	}
	return fmt.Sprintf("%v: %s runs %s, which bpfcap does not replace; %s", ErrHasProgram, e.Ifname, what, tracing)
}

// Is reports whether target is ErrHasProgram.
func (e *HasProgramError) Is(target error) bool { return target == ErrHasProgram }

// Unwrap returns FexitErr.
func (e *HasProgramError) Unwrap() error { return e.FexitErr }

// hasProgramError describes the XDP program id on ifname that bpfcap could
// not trace with fexit (fexitErr says why).
func hasProgramError(ifname string, id ebpf.ProgramID, fexitErr error) error {
	e := &HasProgramError{Ifname: ifname, ProgID: id, FexitErr: fexitErr}
	if id != 0 {
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			if info, err := p.Info(); err == nil {
				e.ProgName = info.Name
			}
			p.Close()
		}
	}
	return e
}
