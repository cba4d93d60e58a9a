package testutils

import "testing"

// RunsInGuests marks the calling test as one the kernel matrix
// (internal/vmtest) runs in every guest kernel as well as on the host: a
// test that needs nothing the guests lack (tshark, tcpdump, iptables, the
// Go toolchain, timing budgets that mean nothing under qemu TCG).
//
// The matrix finds its tests by reading the source, not by a list of
// names: every Test or Fuzz function whose body has this call as one of its
// own statements is run in the guests, under whatever name it has, so
// renaming a test cannot drop it from the matrix. The call must be a
// statement of the test function itself (not of a helper, closure or
// subtest), or the matrix refuses to run. It does nothing at run time.
func RunsInGuests(tb testing.TB) {
	tb.Helper()
}
