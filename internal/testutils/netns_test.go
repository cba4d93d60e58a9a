package testutils

import "testing"

func TestVethPairPings(t *testing.T) {
	RunsInGuests(t)
	p := NewVethPair(t)
	if out, err := Exec(p.HostNSName, "ping", "-c1", "-W2", p.PeerIP.String()); err != nil {
		t.Fatalf("ping over the pair failed: %v\n%s", err, out)
	}
	if out, err := Exec(p.HostNSName, "ping", "-6", "-c1", "-W2", p.PeerIP6.String()); err != nil {
		t.Fatalf("ping6 over the pair failed: %v\n%s", err, out)
	}
}

// TestDropInput: a ping over the pair answers until DropInput makes the
// peer's netfilter drop what it receives.
func TestDropInput(t *testing.T) {
	p := NewVethPair(t)
	if out, err := Exec(p.HostNSName, "ping", "-c1", "-W2", p.PeerIP.String()); err != nil {
		t.Fatalf("ping over the pair failed before the drop: %v\n%s", err, out)
	}
	DropInput(t, p.PeerNS)
	if out, err := Exec(p.HostNSName, "ping", "-c1", "-W1", p.PeerIP.String()); err == nil {
		t.Fatalf("ping answered although the peer drops its input:\n%s", out)
	}
}
