package testutils

import (
	"os"
	"testing"
)

// RequireRoot skips the test when it does not run as root. Privileged tests
// need CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN; `make test` runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN): run make test as root")
	}
}
