// Command vmtest runs bpfcap's privileged tests in a kernel matrix: the
// current Debian 5.10, 6.1 and 6.12 cloud kernels, booted under qemu TCG,
// and the host kernel; on request also the newest 7.x cloud kernel. It prints a table kernel x test -> pass / FAIL / skip[n]
// with the skip reasons below it, and exits non-zero on any failure, test
// missing in a column, package that does not build, -run pattern that
// matches nothing, boot failure or timeout. A skip that contradicts the
// kernel's config (a kprobe test skipped on a kernel with CONFIG_KPROBES=y)
// is shown as FAIL(skip) and counts as a failure, and so is a "needs
// Linux X.Y" skip (kconfig.SkipOrFailFeature) on a kernel at or above X.Y.
//
// # Running one test in one kernel
//
//	make vmtest KERNELS=6.12 PKGS=./probe RUN='^TestTraceDropNoSocket$'
//
// KERNELS takes 5.10, 6.1, 6.12 and host (comma-separated; default all four)
// and, on request only, the newest series of the next Debian release's
// backports (7.3 from trixie-backports on bookworm: KERNELS=7.3);
// PKGS packages relative to the repository root (default: every package
// with a test marked testutils.RunsInGuests, each running exactly its
// marked tests), RUN a -test.run
// pattern for every chosen package. Such a run takes about 25 s (boot ~10 s
// under TCG, the test, the initramfs build). Other forms:
//
//	make vmtest                                  # whole matrix: 5.10, 6.1, 6.12 and host
//	make vmtest KERNELS=host PKGS=./xdpcap       # the same binaries on this machine only
//	make vmtest-selftest                         # a broken probe name must FAIL the matrix
//	go run ./internal/vmtest -kernels 6.1 -pkgs ./tccap -run TestX -env KEY=VALUE
//
// Flags of the command: -kernels, -pkgs, -run, -env KEY=VALUE (repeatable),
// -j (guests in parallel, default 2), -timeout (per guest), -test-timeout
// (per test binary), -cpu, -memory, -smp, -cache, -selftest. Logs of the
// last runs stay in .cache/vmtest/run-*/ (console-<kernel>.log is the
// kernel's console, tests-<kernel>.log the raw test output).
//
// # Writing tests that the matrix runs
//
// Guests run as root with tracefs, debugfs, bpffs and cgroup2 mounted; the
// modules veth, sch_ingress, cls_bpf, xfrm_user, nfnetlink and nf_tables loaded;
// busybox, the host's `ip` (so internal/testutils.NewVethPair works) and
// bpftool; no tshark, tcpdump, iptables or Go toolchain. Test binaries run
// in their package directory with testdata/ beside them. $BPFCAP_VMTEST
// holds the guest kernel's release and $BPFCAP_KCONFIG its config file; use
// package kconfig (Require, SkipOrFail, SkipOrFailFeature) to decide what
// must work.
//
// A test joins the matrix by calling testutils.RunsInGuests(t) as a
// statement of its own body; the harness reads the source (go/parser) and
// runs exactly the marked Test and Fuzz functions of each package, so a
// renamed test stays in the matrix under its new name, and a marker it
// cannot tie to a test (in a helper, closure or subtest) stops the run
// with the file and line. Every marked test must report in every column:
// one that does not is MISSING, a failure. Host-only tests (tshark,
// tcpdump, iptables, timing budgets) simply do not call it.
//
// # How it works
//
// Missing host tools are installed with apt-get (qemu-system-x86,
// busybox-static, kmod, xz-utils, iproute2). Kernels are resolved through
// the linux-image-cloud-amd64 metapackage (newest version of the series in
// `apt-cache madison`), looked for in this order: the system's apt sources
// (6.1 from bookworm-security), a private apt view of <codename>-backports
// (6.12), a private view of the previous Debian release and its security
// updates (bullseye: 5.10), and a private view of the next release's
// backports (trixie-backports: 7.3; neighbouring codenames come from
// distro-info-data's debian.csv when installed). A series is just a version
// prefix: any series one of these offers can be named in -kernels. Private
// views keep their lists in .cache/vmtest/apt/<name> (the machine's apt
// configuration is not changed). The image package is fetched with
// `apt-get download` (21.5 MB for 5.10, 26.7 MB for 6.1, 33.9 MB for
// 6.12), with the packages it depends on at exactly its version: 7.x
// splits the kernel into linux-binary (vmlinuz), linux-base (config) and
// linux-modules, all in usr/lib/modules/<release> (37.5 MB for 7.3).
// vmlinuz, config and the guest modules (with dependencies from `depmod
// -b` and `modprobe --show-depends`, decompressed from .ko.xz; 5.10's are
// plain .ko; a module the config builds in, such as 7.x's nfnetlink, is
// not loaded) are kept in .cache/vmtest/kernels. Without network the
// newest cached kernel of each series is used.
//
// Test binaries are built once with `go test -c` (cgo on, libpcap
// dynamic). The initramfs is an uncompressed newc cpio written by this
// program (no cpio tool, nothing to decompress in the guest): busybox,
// /init, the guest tools and every shared library that ldd finds for them
// and the test binaries (libpcap, libc, the dynamic loader), each package's
// testdata, the modules and /boot/config-<release>. /init runs each binary
// with -test.v=test2json, writing to the second serial port between
// VMTEST-BEGIN/END markers; qemu always exits 0, so the host parses that
// file (go tool test2json) and a missing VMTEST-EXIT marker means the guest
// crashed or timed out. The same binaries run on the host meanwhile.
//
// qemu runs with -accel tcg -cpu max,la57=off,cx16=off -smp 1 -m 1G:
// qemu 7.2's TCG corrupts state on `cmpxchg16b %gs:(...)` (used by 6.12's
// SLUB fast path), which crashed 3 of 3 6.12 boots with -cpu max; without
// cx16 the kernel uses its own emulation and no crash has been seen since.
// 7.3 boots with the same model (/init reached at 4-7 s of uptime).
package main
