package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
)

// ErrNotSupported is wrapped by errors saying the running kernel lacks a
// hook kind. It is cilium/ebpf's sentinel, so errors.Is works across both.
var ErrNotSupported = ebpf.ErrNotSupported

// errnoENOTSUPP is the kernel's internal ENOTSUPP (524, include/linux/errno.h),
// which bpf() returns for a function that cannot be traced; x/sys/unix
// names only the uapi ENOTSUP (95).
const errnoENOTSUPP = unix.Errno(524)

// CheckPrivileges returns a *hook.PermissionError unless the
// process holds CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), which attaching
// tracing programs needs.
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) || has(unix.CAP_BPF) && has(unix.CAP_PERFMON) {
		return nil
	}
	return &hook.PermissionError{Op: "attach to kernel functions and tracepoints", Needs: "CAP_BPF and CAP_PERFMON, or root"}
}

// featureError classifies a load or attach error of a feature probe into
// the three outcomes: nil (supported), ErrNotSupported (not supported), or
// any other error (could not tell). EPERM is never "not supported": without
// the capabilities it means "needs privilege", with them it means the
// kernel refused for a reason we cannot see (lockdown, LSM, a patched
// kernel), so the caller may try another hook kind but must say why.
func featureError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotSupported):
		return fmt.Errorf("%s: %w", what, err)
	// EINVAL, E2BIG and ENOTSUPP are how loads of an unknown program or
	// attach type, or of a function that cannot be traced, are refused.
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.E2BIG), errors.Is(err, errnoENOTSUPP):
		return fmt.Errorf("%s: %w (%v)", what, ErrNotSupported, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		if perr := CheckPrivileges(); perr != nil {
			return fmt.Errorf("%s: %w", what, perr)
		}
		return fmt.Errorf("%s: refused by the kernel (%w) although bpfcap holds CAP_BPF and CAP_PERFMON: lockdown or a security policy?", what, unix.EPERM)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// trivialInsns is the program feature probes load: return 0.
var trivialInsns = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

// probeKprobe tells whether fn can be kprobed: it attaches an empty
// program and detaches it again.
func probeKprobe(fn string) error {
	what := "kprobe:" + fn
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Kprobe, Instructions: trivialInsns, License: "GPL",
	}, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return featureError(what, err)
	}
	defer prog.Close()
	l, err := link.Kprobe(fn, prog, nil)
	if err == nil {
		return l.Close()
	}
	if !haveKprobeInterface() {
		return fmt.Errorf("%s: %w: no kprobe PMU and no kprobe_events in tracefs (kernel built without CONFIG_KPROBES)", what, ErrNotSupported)
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w: %s cannot be probed (not in kallsyms or on the kprobe blacklist): %v", what, ErrNotSupported, fn, err)
	}
	return featureError(what, err)
}

// haveKprobeInterface reports whether the kernel offers a way to create
// kprobes at all: the kprobe PMU or tracefs kprobe_events.
func haveKprobeInterface() bool {
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe/type"); err == nil {
		return true
	}
	for _, dir := range tracefsRoots {
		if _, err := os.Stat(filepath.Join(dir, "kprobe_events")); err == nil {
			return true
		}
	}
	return false
}

// probeTracing tells whether a BTF-typed tracing program (fentry, fexit,
// tp_btf) of attach type at can load against target.
func probeTracing(at ebpf.AttachType, target, what string) error {
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: at, AttachTo: target,
		Instructions: trivialInsns, License: "GPL",
	}, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return featureError(what, err)
	}
	return prog.Close()
}
