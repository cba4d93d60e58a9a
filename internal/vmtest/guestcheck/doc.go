// Package guestcheck holds the vmtest harness's own smoke tests: each one
// loads a small eBPF program with cilium/ebpf, attaches it at one kind of
// hook (kprobe, fentry, fexit, tracepoint, tp_btf, raw_tracepoint on the
// kfree_skb family; XDP and tc via TCX or clsact on a veth), sends real
// packets and waits until the program has counted them.
//
// They prove what each kernel of the matrix supports, independently of
// bpfcap's own packages. A hook kind that the kernel's config enables must
// work: such a test fails rather than skips (see package kconfig).
//
// Environment switches used by `make vmtest-selftest`:
//   - BPFCAP_VMTEST_BROKEN_PROBE=1: kprobe/fentry/fexit attach to a function
//     that does not exist and the tests expect success, so they must fail.
//   - BPFCAP_VMTEST_LAZY_SKIP=1: the kprobe test skips claiming kprobes are
//     not supported, which the harness must report as a failure on kernels
//     whose config enables CONFIG_KPROBES.
package guestcheck
