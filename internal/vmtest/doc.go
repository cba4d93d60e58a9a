// Command vmtest runs bpfcap's privileged tests in a kernel matrix: the
// current Debian 6.1 and 6.12 cloud kernels, booted under qemu TCG, and the
// host kernel. It prints a table kernel x test -> pass / FAIL / skip with
// the reason, and exits non-zero on any failure, missing test, boot failure
// or timeout. A skip that contradicts the kernel's config (a kprobe test
// skipped on a kernel with CONFIG_KPROBES=y) counts as a failure.
//
// # Running
//
//	make vmtest                                   # default matrix, 6.1 + 6.12 + host
//	make vmtest KERNELS=6.12 PKGS=./probe RUN='^TestKprobe$'   # one test, one kernel
//	make vmtest KERNELS=host PKGS=./internal/vmtest/guestcheck  # same binaries on this machine
//	make vmtest-selftest                          # broken probe name must fail the matrix
//
// or directly: go run ./internal/vmtest -kernels 6.1 -pkgs ./xdpcap -run TestX.
// Flags: -kernels, -pkgs, -run, -env KEY=VALUE, -j (parallel guests),
// -timeout (per guest), -test-timeout, -memory, -smp, -cache.
//
// # How
//
// Missing host tools are installed with apt-get (qemu-system-x86,
// busybox-static, kmod, xz-utils, iproute2). Kernels are resolved through
// the linux-image-cloud-amd64 metapackage: the system's apt sources for
// 6.1 (bookworm, bookworm-security), and a private apt view of
// <codename>-backports under .cache/vmtest/apt for 6.12 (the machine's apt
// configuration is not changed). The image package is fetched with
// `apt-get download` and unpacked into .cache/vmtest/kernels with vmlinuz,
// config and the modules the guests load (veth, sch_ingress, cls_bpf and
// their dependencies, from `depmod -b` + `modprobe --show-depends`,
// decompressed).
//
// Test binaries are built once with `go test -c` (cgo on). The initramfs is
// an uncompressed newc cpio written by this program: busybox-static, /init,
// the host's `ip` and `bpftool` and every shared library (from ldd) the
// tools and the test binaries need, including libpcap and the dynamic
// loader, each package's testdata, the modules, and the kernel config at
// /boot/config-<release>. The guest mounts proc, sys, devtmpfs, tracefs,
// debugfs, bpffs and cgroup2, loads the modules, exports BPFCAP_VMTEST and
// BPFCAP_KCONFIG, and runs each binary with -test.v=test2json in its
// package directory, writing to the second serial port between
// VMTEST-BEGIN/END markers; the host parses that file (qemu itself always
// exits 0). The same binaries then run on the host.
//
// Guests have no tshark, tcpdump or iptables: the matrix selects each
// package's guest-safe tests with a -run pattern (matrix.go). Tests use
// package kconfig to decide what a kernel must support.
package main
