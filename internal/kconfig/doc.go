// Package kconfig reads the running kernel's build configuration. probe/
// uses it where no probe can answer (the kernel's memory layout), and tests
// use it to tell "this kernel lacks the feature" (skip) from "this kernel
// has the feature and our code failed to use it" (fail).
//
// The configuration comes from, in order: the file named by $BPFCAP_KCONFIG
// (the vmtest harness sets it inside its guests), /proc/config.gz
// (CONFIG_IKCONFIG_PROC), and /boot/config-$(uname -r). When none is
// readable every symbol is Unknown.
//
// Typical use in a privileged test:
//
//	kconfig.Require(t, "CONFIG_KPROBES") // skip only if the config says "not set"
//	l, err := link.Kprobe(fn, prog, nil)
//	kconfig.SkipOrFail(t, err, "CONFIG_KPROBES") // nil: go on; else skip or fail
//
// Under the vmtest harness ($BPFCAP_VMTEST set) an unknown configuration is
// a failure, never a skip.
package kconfig
