package testutils

import (
	"sync"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// PacketCollector is a pcapng.PacketWriter that keeps a copy of every
// packet it is given. It is safe for concurrent use.
type PacketCollector struct {
	mu   sync.Mutex
	pkts []pcapng.Packet
}

// WritePacket keeps a copy of p, data included.
func (c *PacketCollector) WritePacket(p *pcapng.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := *p
	q.Data = append([]byte(nil), p.Data...)
	c.pkts = append(c.pkts, q)
	return nil
}

// Flush does nothing: the packets are already kept.
func (c *PacketCollector) Flush() error { return nil }

// Len returns how many packets were written so far.
func (c *PacketCollector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pkts)
}

// Packets returns a copy of the list of packets written so far.
func (c *PacketCollector) Packets() []pcapng.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pcapng.Packet(nil), c.pkts...)
}

// WaitFor polls cond every 10 ms until it holds, and fails the test when it
// still does not hold after d. what says what was awaited.
func WaitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
