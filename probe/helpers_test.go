package probe

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// collectSink keeps copies of the packets written to it.
type collectSink struct {
	mu   sync.Mutex
	pkts []pcapng.Packet
}

func (c *collectSink) WritePacket(p *pcapng.Packet) error {
	cp := *p
	cp.Data = append([]byte(nil), p.Data...)
	c.mu.Lock()
	c.pkts = append(c.pkts, cp)
	c.mu.Unlock()
	return nil
}

func (c *collectSink) Flush() error { return nil }

// find returns the packets that satisfy match.
func (c *collectSink) find(match func(*pcapng.Packet) bool) []pcapng.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []pcapng.Packet
	for i := range c.pkts {
		if match(&c.pkts[i]) {
			out = append(out, c.pkts[i])
		}
	}
	return out
}

// runCapture opens a tracing source and runs it into a collectSink until
// the returned stop function is called; stop returns Run's error. The
// source is closed on cleanup, pass or fail.
func runCapture(t *testing.T, opts Options) (*Source, *collectSink, func() error) {
	t.Helper()
	src, err := Open(opts)
	if err != nil {
		t.Fatalf("open %v: %v", opts.Hooks, err)
	}
	t.Cleanup(func() { src.Close() })
	sink := &collectSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return within 10 s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return src, sink, stop
}

// waitFor calls send and checks cond until cond holds or the deadline.
func waitFor(t *testing.T, what string, send func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		send()
		time.Sleep(20 * time.Millisecond) // pacing of the traffic, not readiness
	}
}
