package xdpcap

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/pcapng"
)

// Names in bpf/xdp_fexit.c.
const (
	fexitProgram = "bpfcap_xdp_fexit"
	fexitSeenVar = "bpfcap_fexit_count_seen"
)

// FexitSpec returns the hook spec of an fexit capture of the XDP program
// on ifname: "xdp:fexit:" and the interface name.
func FexitSpec(ifname string) string { return "xdp:fexit:" + ifname }

// openFexitCapture captures what the XDP program id (running on ifname,
// ifindex) returns, with an fexit program attached to it: packets as the
// program leaves them (first buffer), with its verdict.
func openFexitCapture(ifname string, ifindex int, id ebpf.ProgramID, opts CaptureOptions) (*Capture, error) {
	target, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return nil, fmt.Errorf("open XDP program %d: %w", id, err)
	}
	defer target.Close() // the loaded fexit program keeps its own reference
	info, err := target.Info()
	if err != nil {
		return nil, fmt.Errorf("XDP program %d: %w", id, err)
	}
	fn := info.Name
	if fis, err := info.FuncInfos(); err == nil {
		for _, fi := range fis {
			if fi.Offset == 0 && fi.Func != nil {
				fn = fi.Func.Name // the full name; info.Name keeps 15 characters
			}
		}
	}
	spec, err := loadFexit()
	if err != nil {
		return nil, fmt.Errorf("load fexit capture object: %w", err)
	}
	ps := spec.Programs[fexitProgram]
	ps.AttachTarget = target
	ps.AttachTo = fn
	seen := uint32(0)
	if opts.CountSeen {
		seen = 1
	}
	if err := spec.Variables[fexitSeenVar].Set(seen); err != nil {
		return nil, fmt.Errorf("configure fexit capture program: %w", err)
	}
	ring, err := hook.NewRing(spec, opts.Ring)
	if err != nil {
		return nil, err
	}
	p, err := hook.Load(spec, ring, hook.Options{
		Program:  fexitProgram,
		Filter:   opts.Filter,
		Netmask:  opts.Netmask,
		LinkType: pcapng.LinkTypeEthernet,
		Backend:  hook.Scratch,
		Snaplen:  opts.Snaplen,
		MaxRate:  opts.MaxRate,
	})
	if err != nil {
		ring.Close()
		return nil, fmt.Errorf("fexit on %s: %w", fn, err)
	}
	lk, err := link.AttachTracing(link.TracingOptions{Program: p.Program})
	if err != nil {
		p.Close()
		ring.Close()
		return nil, fmt.Errorf("attach fexit to %s: %w", fn, err)
	}
	src, err := hook.NewSource(ring, []hook.Hook{{
		Program: p,
		Links:   []io.Closer{lk},
		Interface: pcapng.Interface{
			Name: FexitSpec(ifname),
			Description: fmt.Sprintf("fexit of XDP program %d (%s) on %s: packets as it leaves them, first buffer only%s",
				id, fn, ifname, seenNote(opts.CountSeen)),
			LinkType: pcapng.LinkTypeEthernet,
		},
		VerdictType:    pcapng.VerdictXDP,
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
	return &Capture{Source: src}, nil
}

// errFexitRefused says why an fexit capture could not start.
func errFexitRefused(err error) string {
	// EPERM as root is the kernel's refusal (lockdown, or a kernel that
	// refuses tracing programs), not missing privilege.
	if errors.Is(err, hook.ErrPermission) && os.Geteuid() != 0 {
		return fmt.Sprintf("needs privilege (%v)", err)
	}
	return fmt.Sprintf("refused by this kernel (%v)", err)
}
