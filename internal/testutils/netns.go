package testutils

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// VethPair is a veth pair between the test's own network namespace (Host
// end) and a fresh peer namespace (Peer end), with IPv4 and IPv6 addresses
// on both ends and the links up. Close removes both namespaces' links.
type VethPair struct {
	// HostNS and PeerNS are the two namespaces' handles.
	HostNS, PeerNS netns.NsHandle
	// HostName and PeerName are the interface names in each namespace.
	HostName, PeerName string
	// HostIndex and PeerIndex are the interfaces' ifindexes.
	HostIndex, PeerIndex int
	// HostIP, PeerIP (IPv4, /24) and HostIP6, PeerIP6 (IPv6, /64).
	HostIP, PeerIP, HostIP6, PeerIP6 net.IP
	// HostNSName and PeerNSName are the names under /run/netns, usable
	// with `ip netns exec`.
	HostNSName, PeerNSName string
}

var nsCounter atomic.Uint32

// NewVethPair creates two named network namespaces (visible to `ip netns`)
// joined by a veth pair, and registers their removal with tb.Cleanup.
// Addresses: 10.99.N.1/24 (host end) and 10.99.N.2/24 (peer end), and
// fd00:99:N::1/64 and ::2, where N differs between pairs of one process.
// Both namespaces are new, so traffic never leaves the test's own hosts.
func NewVethPair(tb testing.TB) *VethPair {
	tb.Helper()
	RequireRoot(tb)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	n := (uint32(os.Getpid()) + nsCounter.Add(1)) % 250
	tag := fmt.Sprintf("%d%d", os.Getpid()%10000, n)
	p := &VethPair{
		HostNSName: "bpfcapt-h" + tag,
		PeerNSName: "bpfcapt-p" + tag,
		HostName:   "bch" + tag,
		PeerName:   "bcp" + tag,
		HostIP:     net.IPv4(10, 99, byte(n), 1).To4(),
		PeerIP:     net.IPv4(10, 99, byte(n), 2).To4(),
		HostIP6:    net.ParseIP(fmt.Sprintf("fd00:99:%x::1", n)),
		PeerIP6:    net.ParseIP(fmt.Sprintf("fd00:99:%x::2", n)),
	}
	if len(p.HostName) > 15 {
		p.HostName, p.PeerName = p.HostName[:15], p.PeerName[:15]
	}
	for _, name := range []string{p.HostNSName, p.PeerNSName} {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		tb.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		// No duplicate address detection: addresses are usable at once.
		for _, key := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"} {
			if out, err := exec.Command("ip", "netns", "exec", name, "sysctl", "-qw", key).CombinedOutput(); err != nil {
				tb.Fatalf("sysctl %s in %s: %v: %s", key, name, err, out)
			}
		}
	}
	var err error
	if p.HostNS, err = netns.GetFromName(p.HostNSName); err != nil {
		tb.Fatalf("open netns %s: %v", p.HostNSName, err)
	}
	tb.Cleanup(func() { p.HostNS.Close() })
	if p.PeerNS, err = netns.GetFromName(p.PeerNSName); err != nil {
		tb.Fatalf("open netns %s: %v", p.PeerNSName, err)
	}
	tb.Cleanup(func() { p.PeerNS.Close() })

	hostH, err := netlink.NewHandleAt(p.HostNS)
	if err != nil {
		tb.Fatalf("netlink handle in %s: %v", p.HostNSName, err)
	}
	defer hostH.Close()
	peerH, err := netlink.NewHandleAt(p.PeerNS)
	if err != nil {
		tb.Fatalf("netlink handle in %s: %v", p.PeerNSName, err)
	}
	defer peerH.Close()

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.HostName},
		PeerName:      p.PeerName,
		PeerNamespace: netlink.NsFd(int(p.PeerNS)),
	}
	if err := hostH.LinkAdd(veth); err != nil {
		tb.Fatalf("create veth %s/%s: %v", p.HostName, p.PeerName, err)
	}
	setup := func(h *netlink.Handle, name string, ip4, ip6 net.IP) int {
		link, err := h.LinkByName(name)
		if err != nil {
			tb.Fatalf("find %s: %v", name, err)
		}
		for _, a := range []string{ip4.String() + "/24", ip6.String() + "/64"} {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				tb.Fatalf("parse %s: %v", a, err)
			}
			if err := h.AddrAdd(link, addr); err != nil {
				tb.Fatalf("add %s to %s: %v", a, name, err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			tb.Fatalf("set %s up: %v", name, err)
		}
		lo, err := h.LinkByName("lo")
		if err == nil {
			h.LinkSetUp(lo)
		}
		return link.Attrs().Index
	}
	p.HostIndex = setup(hostH, p.HostName, p.HostIP, p.HostIP6)
	p.PeerIndex = setup(peerH, p.PeerName, p.PeerIP, p.PeerIP6)

	// A veth end reports carrier a moment after both ends are up; traffic
	// sent before that is lost. Wait for both to be operationally up.
	WaitFor(tb, "the veth pair to come up", 5*time.Second, func() bool {
		h, err1 := hostH.LinkByName(p.HostName)
		q, err2 := peerH.LinkByName(p.PeerName)
		return err1 == nil && err2 == nil &&
			h.Attrs().OperState == netlink.OperUp && q.Attrs().OperState == netlink.OperUp
	})
	return p
}

// Do runs fn with the calling goroutine's thread inside ns, then returns the
// thread to its original namespace.
func Do(tb testing.TB, ns netns.NsHandle, fn func() error) error {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		return fmt.Errorf("enter netns: %w", err)
	}
	defer netns.Set(orig)
	return fn()
}

// Exec runs a command inside the named namespace with `ip netns exec` and
// returns its combined output.
func Exec(nsName string, name string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", nsName, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), nsName, err, out)
	}
	return string(out), nil
}

// KnowNeighbours gives each end a permanent IPv4 neighbour entry for the
// other end (its address and MAC), for tests whose XDP programs drop or
// bounce ARP, so that neither end has to ask.
func (p *VethPair) KnowNeighbours(tb testing.TB) {
	tb.Helper()
	ends := []struct {
		ns    netns.NsHandle
		index int
		ip    net.IP
		mac   net.HardwareAddr
	}{{ns: p.HostNS, index: p.HostIndex, ip: p.HostIP}, {ns: p.PeerNS, index: p.PeerIndex, ip: p.PeerIP}}
	for i := range ends {
		err := Do(tb, ends[i].ns, func() error {
			l, err := netlink.LinkByIndex(ends[i].index)
			if err != nil {
				return err
			}
			ends[i].mac = l.Attrs().HardwareAddr
			return nil
		})
		if err != nil {
			tb.Fatalf("MAC of %s: %v", ends[i].ip, err)
		}
	}
	for i, e := range ends {
		other := ends[1-i]
		err := Do(tb, e.ns, func() error {
			return netlink.NeighSet(&netlink.Neigh{LinkIndex: e.index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: other.ip, HardwareAddr: other.mac})
		})
		if err != nil {
			tb.Fatalf("static neighbour entry for %s at %s: %v", other.ip, e.ip, err)
		}
	}
}
