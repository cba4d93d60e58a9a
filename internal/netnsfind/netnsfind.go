// Package netnsfind finds network namespaces bpfcap did not create: by the
// inode the kernel reports in a packet's metadata, or all of those it can
// reach (named ones in /run/netns and those of running processes), and
// looks up links inside them through netlink. It names the devices of
// packets captured in namespaces other than bpfcap's own.
package netnsfind

import (
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is a network namespace reachable through Path.
type Namespace struct {
	// Path opens the namespace: /run/netns/NAME or /proc/PID/ns/net.
	Path string
	// Inode is the namespace's inode number (what the kernel's
	// net->ns.inum holds, and what BPF programs record).
	Inode uint32
}

// Inode returns the inode number of the network namespace at path.
func Inode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("read network namespace %s: %w", path, err)
	}
	return uint32(st.Ino), nil
}

// candidates lists the paths that may lead to network namespaces: the
// named ones first, then every process's.
func candidates() []string {
	var paths []string
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			paths = append(paths, "/run/netns/"+e.Name())
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if c := p.Name()[0]; c < '0' || c > '9' {
			continue
		}
		paths = append(paths, "/proc/"+p.Name()+"/ns/net")
	}
	return paths
}

// Find returns a path to the network namespace with inode ino, or "" when
// none is reachable.
func Find(ino uint32) string {
	for _, c := range candidates() {
		if got, err := Inode(c); err == nil && got == ino {
			return c
		}
	}
	return ""
}

// All returns every network namespace reachable, each once (by its first
// path: a name in /run/netns where it has one).
func All() []Namespace {
	seen := map[uint32]bool{}
	var all []Namespace
	for _, c := range candidates() {
		ino, err := Inode(c)
		if err != nil || seen[ino] {
			continue
		}
		seen[ino] = true
		all = append(all, Namespace{Path: c, Inode: ino})
	}
	return all
}

// LinkIn returns the link with ifindex in the namespace at path, asking
// netlink through a socket opened inside it.
func LinkIn(path string, ifindex int) (netlink.Link, error) {
	return linkAt(path, fmt.Sprint(ifindex), func(h *netlink.Handle) (netlink.Link, error) { return h.LinkByIndex(ifindex) })
}

// LinkByNameIn returns the link called name in the namespace at path.
func LinkByNameIn(path, name string) (netlink.Link, error) {
	return linkAt(path, name, func(h *netlink.Handle) (netlink.Link, error) { return h.LinkByName(name) })
}

// linkAt asks get for a link (called what in errors) through a netlink
// socket opened in the namespace at path.
func linkAt(path, what string, get func(*netlink.Handle) (netlink.Link, error)) (netlink.Link, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	l, err := get(h)
	if err != nil {
		return nil, fmt.Errorf("link %s in %s: %w", what, path, err)
	}
	return l, nil
}

// WithLink returns every reachable namespace that has a link called name.
func WithLink(name string) []Namespace {
	var found []Namespace
	for _, ns := range All() {
		if _, err := LinkByNameIn(ns.Path, name); err == nil {
			found = append(found, ns)
		}
	}
	return found
}

// Namer names devices by (ifindex, netns inode): in the calling process's
// own namespace directly, elsewhere through a path to the namespace with
// that inode, found once per namespace. Not safe for concurrent use.
type Namer struct {
	own   uint32
	paths map[uint32]string
}

// NewNamer returns a Namer for the calling thread's network namespace.
func NewNamer() *Namer {
	own, _ := Inode("/proc/thread-self/ns/net")
	return &Namer{own: own, paths: map[uint32]string{}}
}

// Name returns the name of the device with ifindex in the namespace with
// inode netns (0: the own namespace), or "" when it cannot be found.
func (n *Namer) Name(ifindex, netns uint32) string {
	if netns == 0 || netns == n.own {
		if l, err := netlink.LinkByIndex(int(ifindex)); err == nil {
			return l.Attrs().Name
		}
		return ""
	}
	path, ok := n.paths[netns]
	if !ok {
		path = Find(netns)
		n.paths[netns] = path
	}
	if path == "" {
		return ""
	}
	l, err := LinkIn(path, int(ifindex))
	if err != nil {
		return ""
	}
	return l.Attrs().Name
}
