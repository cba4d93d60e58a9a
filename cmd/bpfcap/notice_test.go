package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestHabitFallbackNoticeShort: the README's first command says in one
// short line what it attached instead of a kprobe, and -v says why.
// Where kprobes work there is no notice at all. Guest-safe.
func TestHabitFallbackNoticeShort(t *testing.T) {
	testutils.RequireRoot(t)
	for _, verbose := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "x.pcapng")
		args := []string{"trace", "kprobe:kfree_skb:arg1", "proto", "ip", "-w", out}
		if verbose {
			args = append(args, "-v")
		}
		tr := startRun(t, args...)
		tr.waitAttached(t, out)
		if err := tr.stop(t); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, tr.stderr)
		}
		first, _, _ := strings.Cut(tr.stderr.String(), "\n")
		if !strings.Contains(first, ": attached ") {
			t.Logf("no fallback on this kernel: %q", first)
			return
		}
		if !verbose && (len(first) > 100 || !strings.HasSuffix(first, " (-v: why)")) {
			t.Errorf("notice is %d characters, want one short line ending in (-v: why): %q", len(first), first)
		}
		if verbose && !strings.Contains(first, "kprobes:") {
			t.Errorf("-v notice does not say why: %q", first)
		}
	}
}
