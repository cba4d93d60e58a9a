package main

import (
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// hostTool is a program the harness needs on the host and the Debian
// package that provides it.
type hostTool struct {
	path    string // absolute path checked
	pkg     string
	check   func(path string) error // extra check, optional
	purpose string
}

func hostTools() []hostTool {
	return []hostTool{
		{path: "/usr/bin/qemu-system-x86_64", pkg: "qemu-system-x86", purpose: "runs the guests"},
		{path: "/bin/busybox", pkg: "busybox-static", check: requireStatic, purpose: "guest userland"},
		{path: "/sbin/depmod", pkg: "kmod", purpose: "module dependencies of the guest kernels"},
		{path: "/usr/bin/xz", pkg: "xz-utils", purpose: "decompresses .ko.xz modules"},
		{path: "/usr/bin/dpkg-deb", pkg: "dpkg", purpose: "unpacks kernel packages"},
		{path: "/usr/bin/ldd", pkg: "libc-bin", purpose: "finds the shared libraries shipped to guests"},
		{path: "/sbin/ip", pkg: "iproute2", purpose: "ip netns for testutils.NewVethPair in guests"},
	}
}

// requireStatic fails when the ELF file at path asks for a dynamic loader.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (the busybox package); the guest needs busybox-static", path)
		}
	}
	return nil
}

// ensureHostTools installs the Debian packages of missing tools with
// apt-get (waiting for the dpkg lock if another install runs).
func ensureHostTools(ctx context.Context, log io.Writer) error {
	var missing []string
	for _, t := range hostTools() {
		err := func() error {
			if _, err := os.Stat(t.path); err != nil {
				return err
			}
			if t.check != nil {
				return t.check(t.path)
			}
			return nil
		}()
		if err != nil {
			fmt.Fprintf(log, "vmtest: %s (%s) missing: %v\n", t.path, t.purpose, err)
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing packages %s and not root: run `sudo apt-get install %s`", strings.Join(missing, " "), strings.Join(missing, " "))
	}
	fmt.Fprintf(log, "vmtest: apt-get install %s\n", strings.Join(missing, " "))
	args := append([]string{"install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"}, missing...)
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	// Stale or missing package lists are the usual cause: update once.
	fmt.Fprintln(log, "vmtest: apt-get install failed; apt-get update and retry")
	if out, err := exec.CommandContext(ctx, "apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "update").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w\n%s", err, tail(string(out), 10))
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(missing, " "), err, tail(string(out), 20))
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
