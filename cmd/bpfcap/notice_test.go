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

// TestHabitGuidance: the mistakes of issue 17 (6) get a way out, not a
// libpcap or translator error. The hook names need the kernel's BTF.
func TestHabitGuidance(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "tp_btf:kfree_skb", "tcp port 1", "proto", "ip"}, "proto ip after the filter: keywords come before it: ... proto ip 'tcp port 1'"},
		{[]string{"trace", "tp_btf:kfree_skb", "udp", "dev", "eth0"}, "dev eth0 after the filter"},
		{[]string{"tc", "dev", "lo", "ingres"}, `"ingres": did you mean ingress?`},
		{[]string{"trace", "tp_btf:kfree_skbb"}, "did you mean tp_btf:kfree_skb?"},
		{[]string{"trace", "kprobe:ip_rvc"}, "did you mean kprobe:ip_rcv?"},
		{[]string{"trace", "kprobes:kfree_skb"}, `unknown hook kind "kprobes", did you mean kprobe?`},
	} {
		_, _, err := runCLI(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.args, err, tc.want)
		}
	}
	// A filter that uses proto itself is left alone.
	if err := trailingKeyword("ip proto 6"); err != nil {
		t.Errorf("ip proto 6: %v", err)
	}
	if err := trailingKeyword("ip6 proto ip"); err != nil {
		t.Errorf("ip6 proto ip: %v", err)
	}
}
