package hook

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrPermission is wrapped by errors that the kernel refused for lack of
// privilege (EPERM, EACCES).
var ErrPermission = errors.New("needs privilege (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN or root)")

// wrapPerm turns a kernel EPERM/EACCES into ErrPermission, keeping the
// original error in the chain. The bpf() syscall returns EPERM when the
// caller lacks CAP_BPF/CAP_PERFMON (or CAP_SYS_ADMIN on older kernels) and
// for locked-down kernels; none of those mean the feature is missing.
func wrapPerm(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%s: %w: %w", what, ErrPermission, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// PermissionError says an operation was refused for lack of privilege
// and which capabilities it needs. It matches ErrPermission.
type PermissionError struct {
	// Op is what was refused, e.g. "attach tcx ingress".
	Op string
	// Needs names the capabilities, e.g. "CAP_NET_ADMIN and CAP_BPF, or
	// root".
	Needs string
	// Err is the kernel's error (EPERM, EACCES), or nil when the
	// capabilities were checked beforehand.
	Err error
}

// Error says what needs which privilege: "op: needs privilege (needs): err".
func (e *PermissionError) Error() string {
	s := e.Op + ": needs privilege (" + e.Needs + ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrPermission.
func (e *PermissionError) Is(target error) bool { return target == ErrPermission }

// Unwrap returns the kernel's error.
func (e *PermissionError) Unwrap() error { return e.Err }
