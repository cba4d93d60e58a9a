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
const fexitProgram = "bpfcap_xdp_fexit"

// FexitSpec returns the hook spec of an fexit capture of the XDP program
// on ifname: "xdp:fexit:" and the interface name.
func FexitSpec(ifname string) string { return "xdp:fexit:" + ifname }

// openFexitCapture captures what the XDP program id (running on ifname,
// ifindex) returns, with an fexit program attached to it: packets as the
// program leaves them (first buffer), with its verdict.
func openFexitCapture(ifname string, ifindex int, id ebpf.ProgramID, opts CaptureOptions) (_ *Capture, err error) {
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
	b, err := hook.NewBuilder(spec, opts.CaptureOptions)
	if err != nil {
		return nil, err
	}
	defer b.Rollback(&err)
	p, err := b.Load(spec, hook.Options{
		Program:  fexitProgram,
		LinkType: pcapng.LinkTypeEthernet,
		Backend:  hook.Scratch,
	})
	if err != nil {
		return nil, fmt.Errorf("fexit on %s: %w", fn, err)
	}
	lk, err := link.AttachTracing(link.TracingOptions{Program: p.Program})
	if err != nil {
		return nil, fmt.Errorf("attach fexit to %s: %w", fn, err)
	}
	b.Hook(hook.Hook{
		Programs: []*hook.Program{p},
		Links:    []io.Closer{lk},
		Interface: pcapng.Interface{
			Name:        FexitSpec(ifname),
			Description: fmt.Sprintf("fexit of XDP program %d (%s) on %s: packets as it leaves them, first buffer only", id, fn, ifname),
			LinkType:    pcapng.LinkTypeEthernet,
			Device:      ifname,
		},
		VerdictType: pcapng.VerdictXDP,
	})
	src, err := b.Source(hook.SourceOptions{DeviceName: hook.OneDevice(ifindex, ifname)})
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
