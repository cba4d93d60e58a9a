package netnsfind

import (
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestFindsTestNamespaces: the namespaces of a veth pair the test made are
// found by inode, listed once each, and their links looked up by index.
func TestFindsTestNamespaces(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	for _, c := range []struct{ ns, link string }{{p.HostNSName, p.HostName}, {p.PeerNSName, p.PeerName}} {
		ino, err := Inode("/run/netns/" + c.ns)
		if err != nil {
			t.Fatal(err)
		}
		path := Find(ino)
		if got, err := Inode(path); err != nil || got != ino {
			t.Fatalf("Find(%d) = %q (inode %d, %v), want namespace %s", ino, path, got, err, c.ns)
		}
		n := 0
		for _, ns := range All() {
			if ns.Inode == ino {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("All lists namespace %s %d times, want once", c.ns, n)
		}
		idx := p.HostIndex
		if c.link == p.PeerName {
			idx = p.PeerIndex
		}
		l, err := LinkIn(path, idx)
		if err != nil || l.Attrs().Name != c.link {
			t.Fatalf("LinkIn(%s, %d) = %v, %v; want %s", path, idx, l, err, c.link)
		}
	}
	if Find(1) != "" {
		t.Fatal("Find(1) found a namespace with inode 1")
	}
	if _, err := LinkIn("/run/netns/"+p.PeerNSName, 1<<30); err == nil {
		t.Fatal("LinkIn found an interface that does not exist")
	}
}

// TestNamerAndWithLink: a device is found by name in the namespace that
// has it, and named by (ifindex, inode) in that namespace, not in the
// caller's.
func TestNamerAndWithLink(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	peerIno, err := Inode("/run/netns/" + p.PeerNSName)
	if err != nil {
		t.Fatal(err)
	}
	found := WithLink(p.PeerName)
	if len(found) != 1 || found[0].Inode != peerIno {
		t.Fatalf("WithLink(%s) = %+v, want only the peer namespace (inode %d)", p.PeerName, found, peerIno)
	}
	l, err := LinkByNameIn(found[0].Path, p.PeerName)
	if err != nil || l.Attrs().Index != p.PeerIndex {
		t.Fatalf("LinkByNameIn: %v, %v", l, err)
	}
	n := NewNamer()
	for range 2 { // the second time from the cache
		if got := n.Name(uint32(p.PeerIndex), peerIno); got != p.PeerName {
			t.Fatalf("Name(%d, %d) = %q, want %s", p.PeerIndex, peerIno, got, p.PeerName)
		}
	}
	if got := n.Name(uint32(p.PeerIndex), 1); got != "" {
		t.Fatalf("Name in a namespace that does not exist = %q", got)
	}
	if got := n.Name(1, 0); got != "lo" {
		t.Fatalf("Name(1) in the own namespace = %q, want lo", got)
	}
}
