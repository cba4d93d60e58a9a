package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestMain removes the bpfcap binary the tests built. With
// asCommandEnv=1 in its environment the test binary is the bpfcap
// command instead (see startSelf).
func TestMain(m *testing.M) {
	if os.Getenv(asCommandEnv) == "1" {
		main()
	}
	code := m.Run()
	testutils.RemoveBuiltBinaries()
	os.Exit(code)
}

// TestExitCode: the exit statuses the package comment and the README
// document: 0 for success, 2 for any error (printed once with the
// "bpfcap:" prefix), 128+N for signal N before the capture started, also
// when the signal is wrapped.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
		out  string
	}{
		{nil, 0, ""},
		{errors.New("no such hook"), 2, "bpfcap: no such hook\n"},
		{fmt.Errorf("compile filter: %w", &signalError{sig: syscall.SIGINT}), 130, "bpfcap: compile filter: interrupted by SIGINT\n"},
		{&signalError{sig: syscall.SIGTERM}, 143, "bpfcap: interrupted by SIGTERM\n"},
	} {
		var stderr bytes.Buffer
		if got := exitCode(c.err, &stderr); got != c.want || !strings.HasPrefix(stderr.String(), c.out) {
			t.Errorf("exitCode(%v) = %d, printed %q; want %d, %q", c.err, got, stderr.String(), c.want, c.out)
		}
	}

	// In-process: a bad flag, a missing file and a bad filter are errors.
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"filter", "-r", filepath.Join(t.TempDir(), "missing.pcap"), "udp"},
		{"filter", "-d", "udp port"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), strings.NewReader(""), &stdout, &stderr, args)
		if code := exitCode(err, &stderr); code != 2 {
			t.Errorf("bpfcap %s: exit status %d, want 2 (%v)", strings.Join(args, " "), code, err)
		}
	}

}

// TestExitCodeHostBinary: the bpfcap process exits with those statuses
// (it needs the Go toolchain to build the binary).
func TestExitCodeHostBinary(t *testing.T) {
	bin := testutils.BuildBinary(t)
	for args, want := range map[string]int{"filter -d udp": 0, "filter -d udp port": 2, "--no-such-flag": 2} {
		cmd := exec.Command(bin, strings.Fields(args)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("bpfcap %s: %v", args, err)
		}
		if got := cmd.ProcessState.ExitCode(); got != want {
			t.Errorf("bpfcap %s: exit status %d, want %d:\n%s", args, got, want, out)
		}
	}
}
