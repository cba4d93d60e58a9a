package bpfcap

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// goneSource is a fakeSource whose target goes away after some checks.
type goneSource struct {
	fakeSource
	checks atomic.Int32
	after  int32
}

var errTestGone = errors.New("the test's interface was deleted")

func (g *goneSource) Alive() error {
	if g.checks.Add(1) > g.after {
		return errTestGone
	}
	return nil
}

// TestRunTargetGone: a source whose target goes away ends the session
// within about a second of its check, with StopGone and the source's
// error, and the file is finished with its statistics.
func TestRunTargetGone(t *testing.T) {
	var buf bytes.Buffer
	src := &goneSource{fakeSource: fakeSource{name: "a", interval: 10 * time.Millisecond}, after: 1}
	start := time.Now()
	res, err := Run(context.Background(), newFileSink(t, &buf), []Source{src}, Options{Duration: 20 * time.Second})
	if !errors.Is(err, errTestGone) || res.Reason != StopGone {
		t.Fatalf("Run: %v, reason %s; want the source's error and StopGone", err, res.Reason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ended after %v", d)
	}
	n, _, st := readAll(t, buf.Bytes())
	if len(st) != 1 || uint64(n) != res.Written {
		t.Fatalf("file: %d packets, %d statistics blocks; written %d", n, len(st), res.Written)
	}
}

// TestRunOutputFails: a write error that is not a closed pipe ends the
// session with StopOutput, and Written counts only what the output holds.
func TestRunOutputFails(t *testing.T) {
	res, err := Run(context.Background(), newFileSink(t, &failWriter{after: 2}), []Source{&fakeSource{name: "a", interval: time.Millisecond}}, Options{})
	if err == nil || res.Reason != StopOutput {
		t.Fatalf("Run: %v, reason %s; want an error and StopOutput", err, res.Reason)
	}
	if res.Written+res.Unwritten == 0 {
		t.Fatalf("nothing counted: %+v", res)
	}
}
