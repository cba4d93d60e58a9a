package kconfig

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// PolicyEPERM appears in the skip reason SkipOrFail gives when the kernel
// refuses a feature its config enables with EPERM although the test runs as
// root (LSM or lockdown policy). The vmtest harness accepts such a skip on
// the host only.
const PolicyEPERM = "kernel refused with EPERM although running as root and the config enables it (security policy)"

// Require skips the test when the running kernel's config says one of syms
// is not set. When the config enables them, or cannot be read, the test
// goes on and must then work (see SkipOrFail). The skip reason names the
// symbol and the config file, which the vmtest harness checks.
func Require(tb testing.TB, syms ...string) {
	tb.Helper()
	c, err := Load()
	if err != nil {
		return
	}
	for _, s := range syms {
		if c.State(s) == No {
			tb.Skipf("kernel config: %s is not set (%s)", normalize(s), c.Source())
		}
	}
}

// SkipOrFail decides what a failed use of a kernel feature means. err is the
// result of using the feature (attach, load); syms are the config symbols
// the feature needs. With err == nil it returns at once. Otherwise:
//   - a symbol the config says is not set: the test skips, naming it;
//   - every symbol enabled (y or m): the test fails, because the kernel has
//     the feature and our code could not use it;
//   - no readable config: the test skips saying so, except under the vmtest
//     harness ($BPFCAP_VMTEST set), where it fails;
//   - every symbol enabled but err is EPERM while running as root, outside
//     the vmtest harness: a security policy of this machine forbids the
//     feature (this is how this project's development host refuses fentry),
//     so the test cannot tell and skips with a reason containing PolicyEPERM.
func SkipOrFail(tb testing.TB, err error, syms ...string) {
	tb.Helper()
	if err == nil {
		return
	}
	c, lerr := Load()
	if lerr != nil {
		if os.Getenv(EnvVMTest) != "" {
			tb.Fatalf("%v (and the kernel config is unreadable under vmtest: %v)", err, lerr)
		}
		tb.Skipf("%v (kernel config unknown, cannot tell whether %s should work: %v)", err, strings.Join(syms, ", "), lerr)
	}
	var on []string
	for _, s := range syms {
		st := c.State(s)
		if st == No {
			tb.Skipf("kernel config: %s is not set (%s): %v", normalize(s), c.Source(), err)
		}
		on = append(on, fmt.Sprintf("%s=%s", normalize(s), st))
	}
	if errors.Is(err, unix.EPERM) && os.Geteuid() == 0 && os.Getenv(EnvVMTest) == "" {
		tb.Skipf("%v: %s (%s in %s); cannot tell whether it works", err, PolicyEPERM, strings.Join(on, ", "), c.Source())
	}
	tb.Fatalf("%v, although the kernel config enables it (%s in %s)", err, strings.Join(on, ", "), c.Source())
}

// NeedsLinuxPrefix starts the part of a skip reason that SkipOrFailFeature
// gives for a feature the running kernel lacks: "needs Linux 5.18". The
// vmtest harness accepts such a skip only in a column whose kernel is older
// than the version named.
const NeedsLinuxPrefix = "needs Linux "

// SkipOrFailFeature decides what a failed use of a kernel feature that no
// config symbol switches means (a flag or helper that came with a kernel
// version, like BPF_F_TEST_XDP_LIVE_FRAMES in 5.18). err is the result of a
// probe of the feature, minLinux the version that brought it ("5.18").
//   - err == nil: it returns at once;
//   - err wraps ebpf.ErrNotSupported: the test skips with a reason naming
//     the feature and "needs Linux <minLinux>" (the harness fails that skip
//     on a kernel at or above minLinux);
//   - err is EPERM while running as root, outside the vmtest harness: a
//     security policy of this machine refuses a feature the kernel has, so
//     the test skips with a reason containing PolicyEPERM (accepted on the
//     host only);
//   - anything else fails the test.
func SkipOrFailFeature(tb testing.TB, err error, feature, minLinux string) {
	tb.Helper()
	switch {
	case err == nil:
		return
	case errors.Is(err, ebpf.ErrNotSupported):
		tb.Skipf("%s: not supported by this kernel (%s%s): %v", feature, NeedsLinuxPrefix, minLinux, err)
	case errors.Is(err, unix.EPERM) && os.Geteuid() == 0 && os.Getenv(EnvVMTest) == "":
		tb.Skipf("%s: %v: %s; cannot tell whether it works", feature, err, PolicyEPERM)
	}
	tb.Fatalf("%s: %v", feature, err)
}
