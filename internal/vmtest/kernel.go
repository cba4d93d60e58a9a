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

	"github.com/bpfcap/bpfcap/internal/kconfig"
)

// metaPackage is the Debian package whose versions name the current cloud
// kernel of each series.
const metaPackage = "linux-image-cloud-amd64"

// guestModule is a module every guest needs and the config symbol that
// builds it (a built-in one, =y, is not loaded).
type guestModule struct {
	name   string
	config string
}

// guestModules returns the modules every guest loads (with their
// dependencies): veth pairs, the clsact/ingress qdisc, the bpf classifier,
// the xfrm and netfilter netlink families that vishvananda/netlink
// opens in every netlink.NewHandleAt (without them: "protocol not
// supported"), and nf_tables for tests whose packets netfilter drops
// (testutils.DropInput).
func guestModules() []guestModule {
	return []guestModule{
		{"veth", "CONFIG_VETH"},
		{"sch_ingress", "CONFIG_NET_SCH_INGRESS"},
		{"cls_bpf", "CONFIG_NET_CLS_BPF"},
		{"xfrm_user", "CONFIG_XFRM_USER"},
		{"nfnetlink", "CONFIG_NETFILTER_NETLINK"},
		{"nf_tables", "CONFIG_NF_TABLES"},
	}
}

// guestModuleNames returns the names of guestModules, in order.
func guestModuleNames() []string {
	var names []string
	for _, m := range guestModules() {
		names = append(names, m.name)
	}
	return names
}

// modulesToLoad returns the names of guestModules that cfg builds as
// modules; it fails for one cfg does not build at all.
func modulesToLoad(cfg *kconfig.Config) ([]string, error) {
	var load []string
	for _, m := range guestModules() {
		switch cfg.State(m.config) {
		case kconfig.Yes:
			// built in: nothing to load (7.x has no nfnetlink.ko)
		case kconfig.Module:
			load = append(load, m.name)
		default:
			return nil, fmt.Errorf("%s: %s is %s: the guest needs module %s", cfg.Source(), m.config, cfg.State(m.config), m.name)
		}
	}
	return load, nil
}

// kernel is one unpacked guest kernel in the cache.
type kernel struct {
	Series  string   `json:"series"`  // "6.1"
	Package string   `json:"package"` // linux-image-6.1.0-57-cloud-amd64
	Version string   `json:"version"` // Debian version 6.1.192-3
	Release string   `json:"release"` // uname -r: 6.1.0-57-cloud-amd64
	DebSize int64    `json:"deb_size"`
	Modules []string `json:"modules"` // file names under Dir/modules, in insmod order
	Wanted  []string `json:"wanted"`  // guestModuleNames() when unpacked
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

// backportsView returns a private apt view on <codename>-backports: 6.12
// for this system's release (bookworm), the newest series (7.x) for the
// next release (trixie).
func backportsView(ctx context.Context, cacheDir, codename string, log io.Writer) (aptView, error) {
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
	old, err := adjacentCodename(codename, -1)
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

// adjacentCodename returns the codename of the Debian release step
// releases after codename (-1: the previous release, 1: the next), from
// distro-info-data when installed.
func adjacentCodename(codename string, step int) (string, error) {
	names := debianCodenames
	if data, err := os.ReadFile("/usr/share/distro-info/debian.csv"); err == nil {
		names = codenamesFromCSV(data)
	}
	return stepCodename(names, codename, step)
}

// stepCodename returns the release step places after codename in names
// (releases in order).
func stepCodename(names []string, codename string, step int) (string, error) {
	i := slices.Index(names, codename)
	if i < 0 || i+step < 0 || i+step >= len(names) {
		return "", fmt.Errorf("no Debian release known %d from %q", step, codename)
	}
	return names[i+step], nil
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
// release, then in the next release's backports (on bookworm: 6.1, 6.12,
// 5.10 and 7.x in that order).
func resolveKernel(ctx context.Context, cacheDir, series string, log io.Writer) (aptView, string, string, error) {
	codename, err := osCodename()
	if err != nil {
		return aptView{}, "", "", err
	}
	views := []func() (aptView, error){
		func() (aptView, error) { return aptView{name: "system apt sources"}, nil },
		func() (aptView, error) { return backportsView(ctx, cacheDir, codename, log) },
		func() (aptView, error) { return oldReleaseView(ctx, cacheDir, log) },
		func() (aptView, error) {
			next, err := adjacentCodename(codename, 1)
			if err != nil {
				return aptView{}, err
			}
			return backportsView(ctx, cacheDir, next, log)
		},
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
	if k, err := readKernel(dir); err == nil && slices.Equal(k.Wanted, guestModuleNames()) {
		return k, nil
	}
	pkgs, err := kernelPackages(ctx, view, pkg, ver)
	if err != nil {
		return nil, err
	}
	var debs []string
	for _, p := range pkgs {
		deb, err := downloadPackage(ctx, view, filepath.Join(cacheDir, "debs"), p, ver, log)
		if err != nil {
			return nil, err
		}
		debs = append(debs, deb)
	}
	return unpackKernel(ctx, series, pkg, ver, debs, dir)
}

// kernelPackages returns pkg (a linux-image package at version ver) and
// the packages it depends on at exactly ver: the parts of the same kernel
// build. Up to 6.12 the image package holds everything; 7.x splits the
// kernel into linux-binary (vmlinuz), linux-base (config) and
// linux-modules.
func kernelPackages(ctx context.Context, v aptView, pkg, ver string) ([]string, error) {
	out, err := v.cmd(ctx, "apt-cache", "show", pkg+"="+ver).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache show %s=%s: %w", pkg, ver, err)
	}
	return append([]string{pkg}, pinnedDepends(string(out), ver)...), nil
}

// pinnedDepends returns the packages that the first stanza of control
// (apt-cache show output) depends on at exactly version ver.
func pinnedDepends(control, ver string) []string {
	stanza, _, _ := strings.Cut(control, "\n\n")
	var pinned []string
	for _, line := range strings.Split(stanza, "\n") {
		deps, ok := strings.CutPrefix(line, "Depends:")
		if !ok {
			continue
		}
		for _, d := range strings.Split(deps, ",") {
			if strings.Contains(d, "|") {
				continue // an alternative is never a part of the build
			}
			name, cond, ok := strings.Cut(strings.TrimSpace(d), " ")
			if ok && strings.Join(strings.Fields(cond), " ") == "(= "+ver+")" {
				pinned = append(pinned, name)
			}
		}
	}
	return pinned
}

// downloadPackage returns the path of pkg=ver's .deb in debDir,
// downloading it from v when debDir lacks it.
func downloadPackage(ctx context.Context, v aptView, debDir, pkg, ver string, log io.Writer) (string, error) {
	deb := filepath.Join(debDir, pkg+"_"+strings.ReplaceAll(ver, ":", "%3a")+"_amd64.deb")
	if _, err := os.Stat(deb); err == nil {
		return deb, nil
	}
	fmt.Fprintf(log, "vmtest: downloading %s %s from %s\n", pkg, ver, v.name)
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return "", fmt.Errorf("deb cache: %w", err)
	}
	cmd := v.cmd(ctx, "apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", pkg+"="+ver)
	cmd.Dir = debDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s=%s: %w\n%s", pkg, ver, err, tail(string(out), 10))
	}
	if _, err := os.Stat(deb); err != nil {
		return "", fmt.Errorf("apt-get download %s=%s left no %s", pkg, ver, filepath.Base(deb))
	}
	return deb, nil
}

// unpackKernel extracts vmlinuz, config and the guest modules
// (decompressed, with their dependencies in load order) from debs (the
// packages of one kernel build) into dir.
func unpackKernel(ctx context.Context, series, pkg, ver string, debs []string, dir string) (*kernel, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", pkg, err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	k := &kernel{Series: series, Package: pkg, Version: ver, Wanted: guestModuleNames()}
	for _, deb := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, out)
		}
		st, err := os.Stat(deb)
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %w", pkg, err)
		}
		k.DebSize += st.Size()
	}
	files, err := findKernelFiles(root)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", pkg, ver, err)
	}
	k.Release = files.release
	out := filepath.Join(tmp, "out")
	if err := os.MkdirAll(filepath.Join(out, "modules"), 0o755); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", pkg, err)
	}
	for src, dst := range map[string]string{files.vmlinuz: "vmlinuz", files.config: "config"} {
		if err := copyPath(src, filepath.Join(out, dst)); err != nil {
			return nil, err
		}
	}
	cfg, err := readConfig(files.config)
	if err != nil {
		return nil, err
	}
	load, err := modulesToLoad(cfg)
	if err != nil {
		return nil, err
	}
	if len(load) > 0 {
		if k.Modules, err = unpackModules(ctx, root, files.release, load, filepath.Join(out, "modules")); err != nil {
			return nil, err
		}
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

// kernelFiles are the files of an unpacked kernel build.
type kernelFiles struct {
	release string // uname -r
	vmlinuz string
	config  string
}

// findKernelFiles finds vmlinuz and config under root: in boot/ (up to
// 6.12: boot/vmlinuz-<release>, boot/config-<release>) or in the module
// directory (7.x: usr/lib/modules/<release>/vmlinuz and config). For the
// latter it links root/lib to usr/lib, where this system's depmod and
// modprobe look for modules.
func findKernelFiles(root string) (kernelFiles, error) {
	boot, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	merged, _ := filepath.Glob(filepath.Join(root, "usr", "lib", "modules", "*", "vmlinuz"))
	switch {
	case len(boot) == 1 && len(merged) == 0:
		release := strings.TrimPrefix(filepath.Base(boot[0]), "vmlinuz-")
		return kernelFiles{release: release, vmlinuz: boot[0], config: filepath.Join(root, "boot", "config-"+release)}, nil
	case len(boot) == 0 && len(merged) == 1:
		if _, err := os.Lstat(filepath.Join(root, "lib")); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("usr", "lib"), filepath.Join(root, "lib")); err != nil {
				return kernelFiles{}, fmt.Errorf("link lib to usr/lib: %w", err)
			}
		}
		modDir := filepath.Dir(merged[0])
		return kernelFiles{release: filepath.Base(modDir), vmlinuz: merged[0], config: filepath.Join(modDir, "config")}, nil
	}
	return kernelFiles{}, fmt.Errorf("want one kernel, found %d boot/vmlinuz-* and %d usr/lib/modules/*/vmlinuz", len(boot), len(merged))
}

// unpackModules writes the modules load names (with their dependencies,
// decompressed) from the unpacked tree root into dst and returns their
// file names in insmod order.
func unpackModules(ctx context.Context, root, release string, load []string, dst string) ([]string, error) {
	if b, err := exec.CommandContext(ctx, "/sbin/depmod", "-b", root, release).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("depmod -b %s %s: %w: %s", root, release, err, b)
	}
	args := append([]string{"-d", root, "-S", release, "--show-depends", "-a"}, load...)
	b, err := exec.CommandContext(ctx, "/sbin/modprobe", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("modprobe --show-depends %s for %s: %w: %s", strings.Join(load, " "), release, err, b)
	}
	var modules []string
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
		if dec == nil {
			if err := copyPath(f[1], filepath.Join(dst, name)); err != nil {
				return nil, err
			}
			modules = append(modules, name)
			continue
		}
		name = strings.TrimSuffix(name, filepath.Ext(name))
		data, err := exec.CommandContext(ctx, dec[0], dec[1:]...).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(dec, " "), err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("write module %s: %w", name, err)
		}
		modules = append(modules, name)
	}
	return modules, nil
}

// readConfig parses the kernel config file at path.
func readConfig(path string) (*kconfig.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	defer f.Close()
	return kconfig.Parse(f, path)
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
