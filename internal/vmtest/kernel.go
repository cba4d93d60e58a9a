package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// metaPackage is the Debian package whose versions name the current cloud
// kernel of each series.
const metaPackage = "linux-image-cloud-amd64"

// guestModules returns the modules every guest loads (with their
// dependencies): veth pairs, the clsact/ingress qdisc, the bpf classifier,
// the xfrm and netfilter netlink families that vishvananda/netlink
// opens in every netlink.NewHandleAt (without them: "protocol not
// supported"), and nf_tables for tests whose packets netfilter drops
// (testutils.DropInput).
func guestModules() []string {
	return []string{"veth", "sch_ingress", "cls_bpf", "xfrm_user", "nfnetlink", "nf_tables"}
}

// kernel is one unpacked guest kernel in the cache.
type kernel struct {
	Series  string   `json:"series"`  // "6.1"
	Package string   `json:"package"` // linux-image-6.1.0-57-cloud-amd64
	Version string   `json:"version"` // Debian version 6.1.192-3
	Release string   `json:"release"` // uname -r: 6.1.0-57-cloud-amd64
	DebSize int64    `json:"deb_size"`
	Modules []string `json:"modules"` // file names under Dir/modules, in insmod order
	Wanted  []string `json:"wanted"`  // guestModules() when unpacked
	Dir     string   `json:"-"`
}

func (k *kernel) vmlinuz() string { return filepath.Join(k.Dir, "vmlinuz") }
func (k *kernel) config() string  { return filepath.Join(k.Dir, "config") }

// aptView is a set of apt sources: the system's, or a private one under
// the cache (so no source is added to the machine's configuration).
type aptView struct {
	name string
	opts []string
}

func (v aptView) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, append(append([]string{}, v.opts...), args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	return cmd
}

// privateView returns a private apt view named name whose sources are
// lines, with its package lists under cacheDir/apt/<name> (refreshed once a
// day). Each view has its own lists: apt-get update drops the lists of
// sources it was not given.
func privateView(ctx context.Context, cacheDir, name string, lines []string, log io.Writer) (aptView, error) {
	dir, err := filepath.Abs(filepath.Join(cacheDir, "apt", name))
	if err != nil {
		return aptView{}, fmt.Errorf("apt cache dir: %w", err)
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return aptView{}, fmt.Errorf("private apt dir: %w", err)
		}
	}
	src := strings.Join(lines, "\n") + "\n"
	srcFile := filepath.Join(dir, "sources.list")
	old, _ := os.ReadFile(srcFile)
	stamp := filepath.Join(dir, "updated")
	if string(old) != src {
		os.Remove(stamp) // other sources: the lists are stale
		if err := os.WriteFile(srcFile, []byte(src), 0o644); err != nil {
			return aptView{}, fmt.Errorf("private apt sources: %w", err)
		}
	}
	v := aptView{name: name + " (private apt lists in " + dir + ")", opts: []string{
		"-o", "Dir::Etc::SourceList=" + srcFile,
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "APT::Sandbox::User=root",
	}}
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < 24*time.Hour {
		return v, nil
	}
	fmt.Fprintf(log, "vmtest: apt-get update for %s\n", v.name)
	if out, err := v.cmd(ctx, "apt-get", "-q", "update").CombinedOutput(); err != nil {
		return v, fmt.Errorf("apt-get update (%s): %w\n%s", v.name, err, tail(string(out), 10))
	}
	return v, os.WriteFile(stamp, nil, 0o644)
}

// backportsView returns a private apt view on <codename>-backports (6.12
// on bookworm).
func backportsView(ctx context.Context, cacheDir string, log io.Writer) (aptView, error) {
	codename, err := osCodename()
	if err != nil {
		return aptView{}, err
	}
	return privateView(ctx, cacheDir, codename+"-backports", []string{
		fmt.Sprintf("deb http://deb.debian.org/debian %s-backports main", codename),
	}, log)
}

// oldReleaseView returns a private apt view on the Debian release before
// this system's, with its security updates (bullseye's 5.10 on bookworm).
func oldReleaseView(ctx context.Context, cacheDir string, log io.Writer) (aptView, error) {
	codename, err := osCodename()
	if err != nil {
		return aptView{}, err
	}
	old, err := previousCodename(codename)
	if err != nil {
		return aptView{}, err
	}
	return privateView(ctx, cacheDir, old, []string{
		fmt.Sprintf("deb http://deb.debian.org/debian %s main", old),
		fmt.Sprintf("deb http://deb.debian.org/debian-security %s-security main", old),
	}, log)
}

// debianCodenames are Debian's releases in order, for systems without
// distro-info-data's /usr/share/distro-info/debian.csv.
var debianCodenames = []string{"buster", "bullseye", "bookworm", "trixie", "forky", "duke"}

// previousCodename returns the codename of the Debian release before
// codename, from distro-info-data when installed.
func previousCodename(codename string) (string, error) {
	names := debianCodenames
	if data, err := os.ReadFile("/usr/share/distro-info/debian.csv"); err == nil {
		names = codenamesFromCSV(data)
	}
	if i := slices.Index(names, codename); i > 0 {
		return names[i-1], nil
	}
	return "", fmt.Errorf("no Debian release known before %q", codename)
}

// codenamesFromCSV returns the numbered releases (not sid or experimental)
// of distro-info-data's debian.csv (version,codename,series,...), in order.
func codenamesFromCSV(data []byte) []string {
	var names []string
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ",")
		if i > 0 && len(f) > 2 && f[0] != "" {
			names = append(names, f[2])
		}
	}
	return names
}

func osCodename() (string, error) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", fmt.Errorf("find the Debian codename: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok && v != "" {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", errors.New("/etc/os-release has no VERSION_CODENAME: not a Debian-like system")
}

// madison lists the versions of metaPackage that view offers, newest first.
func madison(ctx context.Context, v aptView) ([]string, error) {
	out, err := v.cmd(ctx, "apt-cache", "madison", metaPackage).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache madison %s (%s): %w", metaPackage, v.name, err)
	}
	seen := map[string]bool{}
	var versions []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 {
			continue
		}
		ver := strings.TrimSpace(f[1])
		if !seen[ver] {
			seen[ver] = true
			versions = append(versions, ver)
		}
	}
	var sortErr error
	sort.SliceStable(versions, func(i, j int) bool {
		gt, err := debVersionGreater(versions[i], versions[j])
		if err != nil {
			sortErr = err
		}
		return gt
	})
	return versions, sortErr
}

func debVersionGreater(a, b string) (bool, error) {
	err := exec.Command("dpkg", "--compare-versions", a, "gt", b).Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dpkg --compare-versions %s gt %s: %w", a, b, err)
	}
	return true, nil
}

// imagePackage returns the versioned image package that metaPackage=ver
// depends on.
func imagePackage(ctx context.Context, v aptView, ver string) (string, error) {
	out, err := v.cmd(ctx, "apt-cache", "show", metaPackage+"="+ver).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache show %s=%s: %w", metaPackage, ver, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		deps, ok := strings.CutPrefix(line, "Depends:")
		if !ok {
			continue
		}
		for _, d := range strings.Split(deps, ",") {
			name := strings.Fields(strings.Split(d, "|")[0])[0]
			if strings.HasPrefix(name, "linux-image-") {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("%s=%s depends on no linux-image package", metaPackage, ver)
}

// resolveKernel finds the newest cloud kernel of series in the system's apt
// sources, then in <codename>-backports, then in the previous Debian
// release (on bookworm: 6.1, 6.12 and 5.10 in that order).
func resolveKernel(ctx context.Context, cacheDir, series string, log io.Writer) (aptView, string, string, error) {
	views := []func() (aptView, error){
		func() (aptView, error) { return aptView{name: "system apt sources"}, nil },
		func() (aptView, error) { return backportsView(ctx, cacheDir, log) },
		func() (aptView, error) { return oldReleaseView(ctx, cacheDir, log) },
	}
	var tried []string
	for _, mk := range views {
		v, err := mk()
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		versions, err := madison(ctx, v)
		if err == nil && len(versions) == 0 && v.opts == nil && os.Geteuid() == 0 {
			// A fresh machine may never have run apt-get update.
			fmt.Fprintf(log, "vmtest: apt knows no %s: apt-get update\n", metaPackage)
			if out, uerr := v.cmd(ctx, "apt-get", "-q", "update").CombinedOutput(); uerr != nil {
				tried = append(tried, fmt.Sprintf("apt-get update: %v: %s", uerr, tail(string(out), 5)))
			}
			versions, err = madison(ctx, v)
		}
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		for _, ver := range versions {
			if strings.HasPrefix(ver, series+".") {
				pkg, err := imagePackage(ctx, v, ver)
				if err != nil {
					return v, "", "", err
				}
				return v, pkg, ver, nil
			}
		}
		tried = append(tried, fmt.Sprintf("%s offers %s %s", v.name, metaPackage, strings.Join(versions, ", ")))
	}
	return aptView{}, "", "", fmt.Errorf("no %s %s.x found: %s", metaPackage, series, strings.Join(tried, "; "))
}

// prepareKernel returns the unpacked kernel of series from the cache,
// downloading and unpacking it when the cache lacks the newest version.
// Without network it falls back to the newest cached kernel of the series.
func prepareKernel(ctx context.Context, cacheDir, series string, log io.Writer) (*kernel, error) {
	// One harness at a time fills the cache (apt lists, downloads, unpacking).
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the kernel cache: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock the kernel cache: %w", err)
	}
	view, pkg, ver, err := resolveKernel(ctx, cacheDir, series, log)
	if err != nil {
		if k, cerr := newestCachedKernel(cacheDir, series); cerr == nil {
			fmt.Fprintf(log, "vmtest: %v; using cached %s %s\n", err, k.Package, k.Version)
			return k, nil
		}
		return nil, err
	}
	dir := filepath.Join(cacheDir, "kernels", pkg+"_"+ver)
	if k, err := readKernel(dir); err == nil && slices.Equal(k.Wanted, guestModules()) {
		return k, nil
	}
	debDir := filepath.Join(cacheDir, "debs")
	cached := filepath.Join(debDir, pkg+"_"+strings.ReplaceAll(ver, ":", "%3a")+"_amd64.deb")
	if _, err := os.Stat(cached); err == nil {
		return unpackKernel(ctx, series, pkg, ver, cached, dir)
	}
	fmt.Fprintf(log, "vmtest: downloading %s %s from %s\n", pkg, ver, view.name)
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return nil, fmt.Errorf("deb cache: %w", err)
	}
	cmd := view.cmd(ctx, "apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", pkg+"="+ver)
	cmd.Dir = debDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s=%s: %w\n%s", pkg, ver, err, tail(string(out), 10))
	}
	debs, _ := filepath.Glob(filepath.Join(debDir, pkg+"_*.deb"))
	var deb string
	for _, d := range debs {
		if strings.Contains(filepath.Base(d), "_"+strings.ReplaceAll(ver, ":", "%3a")+"_") {
			deb = d
		}
	}
	if deb == "" {
		return nil, fmt.Errorf("apt-get download %s=%s left no .deb in %s", pkg, ver, debDir)
	}
	return unpackKernel(ctx, series, pkg, ver, deb, dir)
}

// unpackKernel extracts vmlinuz, config and guestModules (decompressed, with
// their dependencies in load order) from deb into dir.
func unpackKernel(ctx context.Context, series, pkg, ver, deb, dir string) (*kernel, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", deb, err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, out)
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return nil, fmt.Errorf("%s: want one boot/vmlinuz-*, found %d", deb, len(vmlinuz))
	}
	release := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	st, err := os.Stat(deb)
	if err != nil {
		return nil, err
	}
	k := &kernel{Series: series, Package: pkg, Version: ver, Release: release, DebSize: st.Size(), Wanted: guestModules()}
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(filepath.Join(out, "modules"), 0o755); err != nil {
		return nil, err
	}
	for src, dst := range map[string]string{vmlinuz[0]: "vmlinuz", filepath.Join(root, "boot", "config-"+release): "config"} {
		if err := copyPath(src, filepath.Join(out, dst)); err != nil {
			return nil, err
		}
	}
	if b, err := exec.CommandContext(ctx, "/sbin/depmod", "-b", root, release).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %w: %s", root, release, err, b)
	}
	args := append([]string{"-d", root, "-S", release, "--show-depends", "-a"}, guestModules()...)
	b, err := exec.CommandContext(ctx, "/sbin/modprobe", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("modprobe --show-depends %s for %s: %w: %s", strings.Join(guestModules(), " "), release, err, b)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
			continue // "builtin X" needs nothing
		}
		seen[f[1]] = true
		name := filepath.Base(f[1])
		var dec []string
		switch {
		case strings.HasSuffix(name, ".xz"):
			dec = []string{"xz", "-dc", f[1]}
		case strings.HasSuffix(name, ".zst"):
			dec = []string{"zstd", "-dcq", f[1]}
		case strings.HasSuffix(name, ".gz"):
			dec = []string{"gzip", "-dc", f[1]}
		}
		dst := filepath.Join(out, "modules", name)
		if dec != nil {
			name = strings.TrimSuffix(name, filepath.Ext(name))
			dst = filepath.Join(out, "modules", name)
			data, err := exec.CommandContext(ctx, dec[0], dec[1:]...).Output()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", strings.Join(dec, " "), err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return nil, err
			}
		} else if err := copyPath(f[1], dst); err != nil {
			return nil, err
		}
		k.Modules = append(k.Modules, name)
	}
	meta, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, "kernel.json"), meta, 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(out, dir); err != nil {
		return nil, fmt.Errorf("move unpacked kernel into the cache: %w", err)
	}
	k.Dir = dir
	return k, nil
}

func readKernel(dir string) (*kernel, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		return nil, err
	}
	k := &kernel{Dir: dir}
	if err := json.Unmarshal(data, k); err != nil {
		return nil, fmt.Errorf("%s/kernel.json: %w", dir, err)
	}
	return k, nil
}

func newestCachedKernel(cacheDir, series string) (*kernel, error) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "kernels", "*"))
	var best *kernel
	for _, d := range dirs {
		k, err := readKernel(d)
		if err != nil || k.Series != series {
			continue
		}
		if best == nil {
			best = k
		} else if gt, _ := debVersionGreater(k.Version, best.Version); gt {
			best = k
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no cached %s kernel", series)
	}
	return best, nil
}

// copyPath copies a file (following symlinks).
func copyPath(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
