package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/netnsfind"
)

// metaFlags are the kernel-side filters by process, namespace and mark:
// --pid, --comm, --cgroup, --netns, --mark.
type metaFlags struct {
	pid    uint32
	comm   string
	cgroup string
	netns  string
	mark   string
}

func addMetaFlags(fs *pflag.FlagSet, m *metaFlags) {
	fs.Uint32Var(&m.pid, "pid", 0, "capture only packets of sockets owned by this process `id`")
	fs.StringVar(&m.comm, "comm", "", "capture only packets of sockets owned by processes with this `name` (as ps -o comm shows it)")
	fs.StringVar(&m.cgroup, "cgroup", "", "capture only packets of sockets owned by processes in this cgroup v2 `path` (or id)")
	fs.StringVar(&m.netns, "netns", "", "capture only packets in this network namespace (`name` in /run/netns, path or inode); -i finds the device there")
	fs.StringVar(&m.mark, "mark", "", "capture only packets with this skb `mark` (VALUE or VALUE/MASK)")
}

// filter returns the kernel filter the flags ask for and the path of the
// --netns namespace ("" without --netns).
func (m *metaFlags) filter() (hook.MetaFilter, string, error) {
	f := hook.MetaFilter{PID: m.pid, Comm: m.comm}
	if err := f.Check(); err != nil {
		return f, "", fmt.Errorf("--comm: %w: the kernel keeps the first 15 (%q)", err, m.comm[:min(len(m.comm), hook.CommLen-1)])
	}
	var path string
	if m.netns != "" {
		var err error
		if path, f.Netns, err = resolveNetns(m.netns); err != nil {
			return f, "", fmt.Errorf("--netns: %w", err)
		}
	}
	if m.cgroup != "" {
		id, err := cgroupID(m.cgroup)
		if err != nil {
			return f, "", fmt.Errorf("--cgroup: %w", err)
		}
		f.Cgroup = id
	}
	if m.mark != "" {
		v, mask, err := parseMark(m.mark)
		if err != nil {
			return f, "", fmt.Errorf("--mark %s: %w", m.mark, err)
		}
		f.Mark, f.MarkMask = v, mask
	}
	return f, path, nil
}

// parseMark parses VALUE or VALUE/MASK (decimal or 0x hex).
func parseMark(s string) (uint32, uint32, error) {
	v, m, hasMask := strings.Cut(s, "/")
	val, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return 0, 0, errors.New("want a 32-bit number, or VALUE/MASK (e.g. 0x10/0xff)")
	}
	mask := uint64(0xffffffff)
	if hasMask {
		if mask, err = strconv.ParseUint(m, 0, 32); err != nil || mask == 0 {
			return 0, 0, errors.New("the mask must be a non-zero 32-bit number (e.g. 0x10/0xff)")
		}
	}
	return uint32(val), uint32(mask), nil
}

// cgroupID returns the id of a cgroup v2 given as an id, a path under
// /sys/fs/cgroup (as /proc/PID/cgroup shows it: "/system.slice/x") or
// the full path of its directory; the id is the directory's inode.
func cgroupID(s string) (uint64, error) {
	if id, err := strconv.ParseUint(s, 10, 64); err == nil {
		return id, nil
	}
	path := s
	if !strings.HasPrefix(path, "/sys/fs/cgroup") {
		path = filepath.Join("/sys/fs/cgroup", s)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cgroup %s: %w (give a path under /sys/fs/cgroup, e.g. system.slice/sshd.service, or a cgroup id)", s, err)
	}
	return st.Ino, nil
}

// resolveNetns finds a network namespace given as a name in /run/netns, a
// path (/proc/PID/ns/net) or an inode number, and returns a path to it and
// its inode.
func resolveNetns(s string) (string, uint32, error) {
	if ino, err := strconv.ParseUint(s, 10, 32); err == nil {
		path := netnsfind.Find(uint32(ino))
		if path == "" {
			return "", 0, fmt.Errorf("no network namespace with inode %d is named in /run/netns or used by a process", ino)
		}
		return path, uint32(ino), nil
	}
	path := s
	if !strings.Contains(s, "/") {
		path = "/run/netns/" + s
	}
	ino, err := netnsfind.Inode(path)
	if err != nil {
		return "", 0, fmt.Errorf("network namespace %q not found (`ip netns list` names them; a path such as /proc/PID/ns/net or an inode also works)", s)
	}
	return path, ino, nil
}

// ambiguousDeviceError says a device name exists in several namespaces.
type ambiguousDeviceError struct {
	name       string
	candidates []netnsfind.Namespace
}

func (e *ambiguousDeviceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "device %s exists in %d network namespaces:", e.name, len(e.candidates))
	for _, c := range e.candidates {
		fmt.Fprintf(&b, " %s@%s", e.name, netnsLabel(c.Path))
	}
	fmt.Fprintf(&b, "; pick one with -i %s@NETNS or --netns NETNS", e.name)
	return b.String()
}

// netnsLabel is how a namespace path is written after IF@: the name for
// /run/netns/NAME, the path otherwise.
func netnsLabel(path string) string {
	if n, ok := strings.CutPrefix(path, "/run/netns/"); ok {
		return n
	}
	return path
}

// resolveDevice finds the device of -i/dev: IF@NETNS names its namespace,
// as does nsPath (--netns); otherwise bpfcap's own namespace is searched
// first, then every namespace named in /run/netns or used by a process.
// It returns the device's name and the path of its namespace ("": own).
func resolveDevice(dev, nsPath string) (string, string, error) {
	name, ns, hasNS := strings.Cut(dev, "@")
	if hasNS {
		path, _, err := resolveNetns(ns)
		if err != nil {
			return "", "", fmt.Errorf("-i %s: %w", dev, err)
		}
		if nsPath != "" && path != nsPath {
			return "", "", fmt.Errorf("-i %s: the device's namespace differs from --netns %s: give one of them", dev, netnsLabel(nsPath))
		}
		nsPath = path
	}
	if nsPath != "" {
		if _, err := netnsfind.LinkByNameIn(nsPath, name); err != nil {
			return "", "", fmt.Errorf("device %s does not exist in network namespace %s", name, netnsLabel(nsPath))
		}
		return name, nsPath, nil
	}
	_, ownErr := hook.LookupDevice(name)
	if ownErr == nil {
		return name, "", nil
	}
	own, _ := netnsfind.Inode("/proc/thread-self/ns/net")
	var found []netnsfind.Namespace
	for _, c := range netnsfind.WithLink(name) {
		if c.Inode != own {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("%w; no other network namespace has it either", ownErr)
	case 1:
		return name, found[0].Path, nil
	}
	return "", "", &ambiguousDeviceError{name: name, candidates: found}
}

// inNetns runs fn on a thread inside the network namespace at path ("":
// the current one), then returns the thread to its namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("read the current network namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	defer netns.Set(orig)
	return fn()
}

// hostPin returns where a pinned object at path can be opened: path
// itself when it exists, else the same path under the root of an
// ancestor process or of PID 1 that has it (`ip netns exec` mounts a fresh
// /sys, which hides the bpffs of the mount namespace it was started from;
// its parent still sees it). Otherwise it returns path.
func hostPin(path string) (string, bool) {
	if !filepath.IsAbs(path) {
		return path, false
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return path, false
	}
	for _, pid := range append(ancestors(), 1) {
		alt := fmt.Sprintf("/proc/%d/root%s", pid, path)
		if _, err := os.Stat(alt); err == nil {
			return alt, true
		}
	}
	return path, false
}

// ancestors returns the pids of this process's parent, its parent, and so
// on up to (not including) PID 1.
func ancestors() []int {
	var out []int
	for pid := os.Getppid(); pid > 1 && len(out) < 64; {
		out = append(out, pid)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			break
		}
	}
	return out
}

// bpffsHidden reports whether path is under /sys/fs/bpf while that is not
// a bpf filesystem here (as under `ip netns exec`).
func bpffsHidden(path string) bool {
	if !strings.HasPrefix(path, "/sys/fs/bpf/") {
		return false
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err != nil {
		return true
	}
	return st.Type != unix.BPF_FS_MAGIC
}
