package hook

import (
	"testing"

	"github.com/bpfcap/bpfcap/pcapng"
)

// TestLossCounter: losses before the start are not counted, each
// increase goes on the next packet only, and a counter that goes back
// (a reset) reports nothing new.
func TestLossCounter(t *testing.T) {
	l := NewLossCounter(10)
	var p pcapng.Packet
	l.Stamp(&p)
	if p.Flags&pcapng.HasDropCount != 0 {
		t.Fatalf("first packet carries %d drops before any new loss", p.DropCount)
	}
	l.Observe(13)
	l.Observe(15)
	l.Stamp(&p)
	if p.Flags&pcapng.HasDropCount == 0 || p.DropCount != 5 {
		t.Fatalf("packet after losses 10 -> 15: flags %#x, drop count %d; want 5", p.Flags, p.DropCount)
	}
	p = pcapng.Packet{}
	l.Stamp(&p)
	if p.Flags&pcapng.HasDropCount != 0 {
		t.Errorf("the next packet carries the same %d drops again", p.DropCount)
	}
	l.Observe(4)
	if n := l.Take(); n != 0 {
		t.Errorf("a counter that went back reports %d new losses", n)
	}
	if got := l.Lost(); got != 5 {
		t.Errorf("Lost() = %d since the start, want 5", got)
	}
}
