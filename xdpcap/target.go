package xdpcap

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
)

// ErrNoOwner is returned (wrapped) by TargetAttrs when no XDP program uses
// the hook yet: the first program put into it would decide which programs
// may use it, and could lock out the program it is meant for.
var ErrNoOwner = errors.New("no XDP program uses the hook yet")

// Target describes how a tail-call target must be loaded to be accepted by
// a hook: the kernel only lets a prog array hold programs whose expected
// attach type and frags flag match those of its owner (the program that
// tail-calls through it).
type Target struct {
	// AttachType is the expected attach type: ebpf.AttachXDP for owners
	// loaded by libbpf or cilium/ebpf from SEC("xdp"), ebpf.AttachNone for
	// owners loaded by iproute2 and older loaders.
	AttachType ebpf.AttachType
	// Frags is set for owners loaded with BPF_F_XDP_HAS_FRAGS (SEC
	// "xdp.frags"); such programs see multi-buffer packets.
	Frags bool
}

// ProgFlags returns the BPF_PROG_LOAD flags the target needs.
func (t Target) ProgFlags() uint32 {
	if t.Frags {
		return unix.BPF_F_XDP_HAS_FRAGS
	}
	return 0
}

// Apply sets spec's attach type and flags for the target.
func (t Target) Apply(spec *ebpf.ProgramSpec) {
	spec.AttachType = t.AttachType
	spec.Flags &^= unix.BPF_F_XDP_HAS_FRAGS
	spec.Flags |= t.ProgFlags()
}

// String describes the target ("attach type XDP, frags").
func (t Target) String() string {
	s := "no expected attach type"
	if t.AttachType == ebpf.AttachXDP {
		s = "expected attach type BPF_XDP"
	}
	if t.Frags {
		return s + ", frags"
	}
	return s
}

// TargetAttrs finds how tail-call targets must be loaded for this hook by
// trying each combination with a program that only returns action a, in the
// slot for a (so the hook's behaviour is unchanged while it tries); the
// slot is empty afterwards. The slot must be empty or stale.
func (h *Hook) TargetAttrs(a Action) (Target, error) {
	typ, owned, err := h.ownerProgType()
	if err != nil {
		return Target{}, err
	}
	if !owned {
		return Target{}, fmt.Errorf("%w: load the instrumented XDP program (the one that calls xdpcap_exit with this hook) first", ErrNoOwner)
	}
	if typ != ebpf.XDP {
		return Target{}, fmt.Errorf("%w: the hook belongs to a %s program, not an XDP program", ErrNotHook, typ)
	}
	if int(a) >= h.NumSlots() {
		return Target{}, fmt.Errorf("hook has no slot for %s", a.KernelName())
	}
	candidates := []Target{
		{AttachType: ebpf.AttachXDP},
		{AttachType: ebpf.AttachNone},
		{AttachType: ebpf.AttachXDP, Frags: true},
		{AttachType: ebpf.AttachNone, Frags: true},
	}
	var errs []error
	for _, t := range candidates {
		spec := &ebpf.ProgramSpec{
			Name:       "bpfcap_probe",
			Type:       ebpf.XDP,
			AttachType: t.AttachType,
			Flags:      t.ProgFlags(),
			License:    "Dual BSD/GPL",
			Instructions: asm.Instructions{
				asm.Mov.Imm(asm.R0, int32(a)),
				asm.Return(),
			},
		}
		p, err := ebpf.NewProgram(spec)
		if err != nil {
			// Frags need 5.18; a kernel without them has no owner with them.
			errs = append(errs, fmt.Errorf("load probe (%s): %w", t, err))
			continue
		}
		err = h.m.Update(uint32(a), p, ebpf.UpdateAny)
		p.Close()
		if err == nil {
			if err := h.Clear(a); err != nil {
				return Target{}, err
			}
			return t, nil
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return Target{}, &hook.PermissionError{Op: "fill hook slot " + a.String(), Needs: "root or CAP_BPF", Err: err}
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	return Target{}, fmt.Errorf("hook accepts no XDP tail-call target bpfcap can load: %w", errors.Join(errs...))
}
