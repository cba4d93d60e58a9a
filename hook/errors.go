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
