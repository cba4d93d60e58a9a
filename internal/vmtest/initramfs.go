package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// guestTools are host programs shipped into guests (with their shared
// libraries) when the host has them. ip: testutils.NewVethPair uses
// `ip netns`. bpftool: tests may check that nothing stays attached.
func guestTools() []string { return []string{"/sbin/ip", "/usr/sbin/bpftool"} }

// lddRE matches "libx.so.1 => /lib/.../libx.so.1 (0x...)" and
// "/lib64/ld-linux-x86-64.so.2 (0x...)".
var lddRE = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x`)

// sharedLibs returns the shared libraries (and dynamic loader) that the
// ELF files need, as ldd resolves them on this host.
func sharedLibs(ctx context.Context, files []string) ([]string, error) {
	set := map[string]bool{}
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "ldd", f).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "not a dynamic executable") {
				continue
			}
			return nil, fmt.Errorf("ldd %s: %w: %s", f, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "not found") {
				return nil, fmt.Errorf("ldd %s: %s", f, strings.TrimSpace(line))
			}
			if m := lddRE.FindStringSubmatch(line); m != nil {
				set[m[1]] = true
			}
		}
	}
	libs := make([]string, 0, len(set))
	for l := range set {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs, nil
}

// guestPlan is everything one guest runs.
type guestPlan struct {
	kernel *kernel
	env    []string // KEY=VALUE for every test binary
	runs   []guestRun
}

// guestRun is one invocation of a test binary in the guest.
type guestRun struct {
	label   string   // row prefix, e.g. "probe" or "guestcheck[broken-probe]"
	pkgDir  string   // package directory relative to the repo root
	bin     string   // host path of the test binary
	run     string   // -test.run pattern
	env     []string // extra KEY=VALUE
	timeout string   // -test.timeout
	tests   []string // tests that must report a result in every column
}

// shellQuote quotes s for busybox sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// initScript is the guest's /init: mount the pseudo filesystems, load the
// modules, run each test binary with its output on ttyS1 between markers,
// and power off.
func initScript(p *guestPlan) string {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpffs /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec >/dev/ttyS1 2>&1 </dev/null
echo "VMTEST-BOOT $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime)s"
ip link set lo up
ulimit -l unlimited
`)
	for _, m := range p.kernel.Modules {
		fmt.Fprintf(&b, "insmod /lib/modules/vmtest/%s || echo \"VMTEST-MODULE-FAIL %s\"\n", m, m)
	}
	fmt.Fprintf(&b, "export BPFCAP_VMTEST=%s BPFCAP_KCONFIG=/boot/config-%s\n", shellQuote(p.kernel.Release), p.kernel.Release)
	for _, e := range p.env {
		fmt.Fprintf(&b, "export %s\n", shellQuote(e))
	}
	for _, r := range p.runs {
		fmt.Fprintf(&b, "cd /src/%s\necho \"VMTEST-BEGIN %s\"\n", r.pkgDir, r.label)
		fmt.Fprintf(&b, "env")
		for _, e := range r.env {
			fmt.Fprintf(&b, " %s", shellQuote(e))
		}
		fmt.Fprintf(&b, " ./%s -test.v=test2json -test.count=1 -test.timeout=%s -test.run %s\n",
			filepath.Base(r.bin), r.timeout, shellQuote(r.run))
		fmt.Fprintf(&b, "echo \"\nVMTEST-END %s $?\"\n", r.label)
	}
	b.WriteString("echo VMTEST-EXIT\nsync\nreboot -f\n")
	return b.String()
}

// buildInitramfs writes the guest's initramfs to dst: busybox, /init, the
// guest tools and every shared library they and the test binaries need,
// the test binaries with their testdata, the kernel's modules and config.
func buildInitramfs(ctx context.Context, repo, dst string, p *guestPlan) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	defer f.Close()
	c := newCPIOWriter(f)
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/etc", "/usr/bin", "/usr/sbin", "/sbin"} {
		c.mkdirAll(d)
	}
	c.charDev("/dev/console", 0o600, 5, 1)
	c.charDev("/dev/null", 0o666, 1, 3)
	c.charDev("/dev/ttyS1", 0o600, 4, 65)
	c.copyFile("/bin/busybox", "/bin/busybox", 0o755)
	applets, err := exec.CommandContext(ctx, "/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a != "busybox" {
			c.symlink("/bin/"+a, "busybox")
		}
	}
	c.bytes("/init", 0o755, []byte(initScript(p)))
	c.bytes("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	c.bytes("/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	for _, etc := range []string{"/etc/services", "/etc/protocols"} {
		if _, err := os.Stat(etc); err == nil {
			c.copyFile(etc, etc, 0o644)
		}
	}
	elfs := []string{}
	for _, t := range guestTools() {
		if _, err := os.Stat(t); err == nil {
			c.copyFile("/usr/local/bin/"+path.Base(t), t, 0o755)
			elfs = append(elfs, t)
		}
	}
	shipped := map[string]bool{}
	for _, r := range p.runs {
		elfs = append(elfs, r.bin)
		dir := "/src/" + r.pkgDir
		if !shipped[r.bin] {
			shipped[r.bin] = true
			c.copyFile(dir+"/"+filepath.Base(r.bin), r.bin, 0o755)
			addTree(c, filepath.Join(repo, r.pkgDir, "testdata"), dir+"/testdata")
		}
	}
	addTree(c, filepath.Join(repo, "testdata"), "/src/testdata")
	libs, err := sharedLibs(ctx, elfs)
	if err != nil {
		return err
	}
	for _, l := range libs {
		c.copyFile(l, l, 0o755)
	}
	for _, m := range p.kernel.Modules {
		c.copyFile("/lib/modules/vmtest/"+m, filepath.Join(p.kernel.Dir, "modules", m), 0o644)
	}
	c.copyFile("/boot/config-"+p.kernel.Release, p.kernel.config(), 0o644)
	if err := c.close(); err != nil {
		return fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	return f.Close()
}

// addTree copies the host directory src (if it exists) to dst in the
// archive, regular files and directories only.
func addTree(c *cpioWriter, src, dst string) {
	if _, err := os.Stat(src); err != nil {
		return
	}
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		target := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			c.mkdirAll(target)
		case d.Type().IsRegular():
			c.copyFile(target, p, 0)
		}
		return nil
	})
}
