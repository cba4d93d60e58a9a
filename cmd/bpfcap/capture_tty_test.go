package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestTerminalSummaries: with stdout on a terminal, each packet is one
// readable line, shown while the capture runs.
func TestTerminalSummaries(t *testing.T) {
	master, slave := openPTY(t)
	src := &tickSource{interval: 20 * time.Millisecond}
	env := &cliEnv{stdout: slave, stderr: &strings.Builder{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runCapture(ctx, env, &captureOptions{}, func(context.Context) (bpfcap.Source, error) { return src, nil })
	}()
	lines := bufio.NewScanner(master)
	for i := range 2 {
		if !lines.Scan() {
			t.Fatalf("line %d: %v", i, lines.Err())
		}
		l := lines.Text()
		if !strings.Contains(l, " fake:tick: ") || !strings.HasSuffix(strings.TrimSpace(l), "length 60:") {
			t.Errorf("summary line %q", l)
		}
		if !src.running.Load() {
			t.Fatal("summary shown only after the capture ended")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestLiveCounter: writing to a file with stderr on a terminal shows a
// live "captured N, lost M" counter.
func TestLiveCounter(t *testing.T) {
	master, slave := openPTY(t)
	src := &tickSource{interval: 10 * time.Millisecond}
	env := &cliEnv{stdout: slave, stderr: slave}
	path := filepath.Join(t.TempDir(), "x.pcapng")
	done := make(chan error, 1)
	go func() {
		done <- runCapture(context.Background(), env, &captureOptions{WriteFile: path, Duration: 1200 * time.Millisecond},
			func(context.Context) (bpfcap.Source, error) { return src, nil })
	}()
	r := bufio.NewReader(master)
	deadline := time.Now().Add(10 * time.Second)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "\rcaptured ") && time.Now().Before(deadline) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		seen.WriteByte(b)
	}
	if !strings.Contains(seen.String(), "\rcaptured ") {
		t.Fatalf("no live counter on the terminal: %q", seen.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
