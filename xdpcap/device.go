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
// kernel that refuses gives ErrHasProgram with how to instrument the
// program instead. opts.Actions is ignored.
func OpenDeviceCapture(ifname string, opts CaptureOptions) (*Capture, error) {
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
			if opts.Notices != nil {
				fmt.Fprintf(opts.Notices, "bpfcap: %s runs XDP program %d: capturing its packets and verdicts with fexit (first buffer of each packet)\n", ifname, id)
			}
			return c, nil
		}
		return nil, hasProgramError(ifname, id, err)
	}

	spec, err := loadCapture()
	if err != nil {
		return nil, fmt.Errorf("load XDP capture object: %w", err)
	}
	ring, err := hook.NewRing(spec, opts.Ring)
	if err != nil {
		return nil, err
	}
	flags, err := copyFlags()
	if err != nil {
		ring.Close()
		return nil, err
	}
	flags |= xdpFlagEntry
	if opts.CountSeen {
		flags |= xdpFlagSeen
	}
	p, err := loadXDPProgram(spec, ring, opts, Pass, flags, Target{AttachType: ebpf.AttachXDP})
	if err != nil {
		ring.Close()
		return nil, err
	}
	lk, err := link.AttachXDP(link.XDPOptions{Program: p.Program, Interface: ifindex})
	if err != nil {
		p.Close()
		ring.Close()
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return nil, hasProgramError(ifname, 0, nil)
		}
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("attach XDP to %s: needs privilege (CAP_NET_ADMIN and CAP_BPF, or root): %w", ifname, err)
		}
		return nil, fmt.Errorf("attach XDP to %s: %w", ifname, err)
	}
	src, err := hook.NewSource(ring, []hook.Hook{{
		Program: p,
		Links:   []io.Closer{lk},
		Interface: pcapng.Interface{
			Name:        DeviceSpec(ifname),
			Description: fmt.Sprintf("XDP entry of %s (bpfcap's own pass-through program)%s", ifname, seenNote(opts.CountSeen)),
			LinkType:    pcapng.LinkTypeEthernet,
			MAC:         l.Attrs().HardwareAddr,
		},
		VerdictType:    pcapng.VerdictNone,
		SeenNotCounted: !opts.CountSeen,
	}}, hook.SourceOptions{DeviceName: func(idx, _ uint32) string {
		if idx == uint32(ifindex) {
			return ifname
		}
		return ""
	}})
	if err != nil {
		return nil, err
	}
	return &Capture{Source: src, FilterInlined: p.Inlined}, nil
}

// hasProgramError says how to capture on an interface that runs an XDP
// program bpfcap could not trace with fexit (fexitErr says why).
func hasProgramError(ifname string, id ebpf.ProgramID, fexitErr error) error {
	what := "an XDP program"
	if id != 0 {
		what = fmt.Sprintf("XDP program %d", id)
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			if info, err := p.Info(); err == nil && info.Name != "" {
				what = fmt.Sprintf("XDP program %d (%s)", id, info.Name)
			}
			p.Close()
		}
	}
	tracing := "capturing inside it with fentry/fexit: not tried"
	if fexitErr != nil {
		tracing = "capturing inside it with fentry/fexit: " + errFexitRefused(fexitErr) + ", so bpfcap cannot capture inside that program here"
	}
	return fmt.Errorf("%w: %s runs %s. bpfcap does not replace it. Instrument it: end every path with "+
		"`return xdpcap_exit(ctx, &xdpcap_hook, action);` (bpf/xdpcap.h), pin the hook map and run `bpfcap xdp PIN`; %s",
		ErrHasProgram, ifname, what, tracing)
}
