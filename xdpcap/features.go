package xdpcap

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
)

// HaveFrags reports whether the running kernel loads XDP programs with
// BPF_F_XDP_HAS_FRAGS (multi-buffer packets, Linux 5.18). It returns nil
// (supported), an error wrapping ebpf.ErrNotSupported whose message says
// "needs Linux 5.18", or another error when it cannot tell (EPERM: no
// privilege to load a program). The answer is probed once and cached.
func HaveFrags() error { return haveFrags() }

var haveFrags = sync.OnceValue(func() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bpfcap_frags",
		Type:         ebpf.XDP,
		AttachType:   ebpf.AttachXDP,
		Flags:        unix.BPF_F_XDP_HAS_FRAGS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(Pass)), asm.Return()},
	})
	switch {
	case err == nil:
		p.Close()
		return nil
	case errors.Is(err, unix.EINVAL):
		// An unknown program flag is EINVAL (bpf_prog_load checks the
		// flags it knows first).
		return fmt.Errorf("XDP frags (BPF_F_XDP_HAS_FRAGS) needs Linux 5.18: %w (%v)", ebpf.ErrNotSupported, err)
	}
	return fmt.Errorf("probe XDP frags: %w", err)
})

// copyFlags returns the flags of bpf/xdp_capture.c that choose how a
// matching packet is copied: bpf_xdp_load_bytes where the kernel has it
// (5.18), else bpf_probe_read_kernel (linear packets only, which is all
// such kernels have).
func copyFlags() (uint32, error) {
	err := features.HaveProgramHelper(ebpf.XDP, asm.FnXdpLoadBytes)
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return xdpFlagReadKernel, nil
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		// Loading the probe program was refused: could not tell.
		return 0, &hook.PermissionError{Op: "probe bpf_xdp_load_bytes", Needs: "CAP_BPF, or root", Err: err}
	}
	return 0, fmt.Errorf("probe bpf_xdp_load_bytes: %w", err)
}
