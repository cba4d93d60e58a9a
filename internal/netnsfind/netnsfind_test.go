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
