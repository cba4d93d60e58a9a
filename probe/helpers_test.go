package probe

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

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

// loadedProbePrograms counts the loaded BPF programs that come from probe.c
// (names start with "probe_"), to check that nothing stays loaded.
func loadedProbePrograms(t *testing.T) int {
	t.Helper()
	n := 0
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		if err != nil {
			t.Fatalf("iterate programs: %v", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err == nil && strings.HasPrefix(info.Name, "probe_") {
			n++
		}
	}
}

// waitUnloaded waits until no more probe programs are loaded than before:
// the kernel frees a closed program after an RCU grace period.
func waitUnloaded(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := loadedProbePrograms(t)
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d probe programs loaded before, still %d after Close", before, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
