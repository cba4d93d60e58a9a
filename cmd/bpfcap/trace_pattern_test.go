package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/probe"
)

// TestTracePatternWords: globs and all are hook words; the words after
// them are keywords and the filter.
func TestTracePatternWords(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		hooks, rest []string
	}{
		{[]string{"all", "tcp", "port", "6666"}, []string{"all"}, []string{"tcp", "port", "6666"}},
		{[]string{"tp_btf:*", "kprobe:tcp_*", "proto", "ip"}, []string{"tp_btf:*", "kprobe:tcp_*"}, []string{"proto", "ip"}},
		{[]string{"tracepoint:skb:*", "fentry:ip_*"}, []string{"tracepoint:skb:*", "fentry:ip_*"}, []string{}},
	} {
		hooks, rest, err := splitHooks(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(hooks, tc.hooks) || !slices.Equal(rest, tc.rest) {
			t.Errorf("%q: hooks %q rest %q, want %q and %q", tc.args, hooks, rest, tc.hooks, tc.rest)
		}
	}
	for args, want := range map[string]string{
		"tp_btf:* tp_btf:*":   "given twice",
		"kprobe:tcp_*:arg1":   "no :arg1",
		"kprobe:tcp_[ udp":    "not a valid glob",
		"kprobes:tcp_* icmp":  "did you mean kprobe",
		"all all":             "given twice",
		"tracepoint:* port 1": "tracepoint",
	} {
		_, _, err := splitHooks(strings.Fields(args))
		if err == nil || !errors.Is(err, probe.ErrBadSpec) && !strings.Contains(err.Error(), "twice") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", args, err, want)
		}
	}
}

// TestTracePatternNoMatch: a glob that matches nothing names itself and
// what would match.
func TestTracePatternNoMatch(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	for glob, want := range map[string]string{
		"tp_btf:nte_dev_*": "did you mean tp_btf:net_dev_*",
		"tracepoint:sbk:*": "did you mean tracepoint:skb:*",
	} {
		err := run(context.Background(), strings.NewReader(""), io.Discard, io.Discard, []string{"trace", glob, "-c", "1", "-w", filepath.Join(t.TempDir(), "x.pcapng")})
		if err == nil || !strings.Contains(err.Error(), glob) || !strings.Contains(err.Error(), want) {
			t.Errorf("trace %s: %v, want an error naming it and saying %q", glob, err, want)
		}
	}
}

// attachedRE reads the attach figures -v prints.
var attachedRE = regexp.MustCompile(`attached (\d+) hooks in ([0-9.]+) s`)

// TestTracePatternAll: `bpfcap trace all -v` attaches every hook point
// this kernel allows (the functions too where a function hook kind
// works), says how many and how long it took, captures a dropped datagram
// at several hooks including kfree_skb, and leaves nothing loaded after
// it stops.
func TestTracePatternAll(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	before := testutils.CountPrograms(t, "probe_")
	p := testutils.NewVethPair(t)
	out := filepath.Join(t.TempDir(), "all.pcapng")
	tr := startPatternRun(t, "trace", "all", "-v", "proto", "eth", "-w", out, "udp dst port 6553")
	// Hundreds of programs load before the file appears: more time than
	// waitAttached gives. Without kprobe-multi (5.10, Debian's 6.1) all is
	// a perf kprobe per function: about 3 min to attach in the emulated
	// guests, and over 1 min to detach on 6.1.
	deadline := time.Now().Add(10 * time.Minute)
	tr.stopWait = 5 * time.Minute
	for {
		if _, err := os.Stat(out); err == nil {
			break
		}
		select {
		case err := <-tr.done:
			t.Fatalf("bpfcap ended before attaching: %v; stderr:\n%s", err, tr.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not attached after 10 min; stderr:\n%s", tr.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := attachedRE.FindStringSubmatch(tr.stderr.String())
	if m == nil {
		t.Fatalf("-v does not say how many hooks attached in how long:\n%s", tr.stderr)
	}
	n, _ := strconv.Atoi(m[1])
	t.Logf("all: attached %s hooks in %s s", m[1], m[2])
	for _, line := range strings.Split(tr.stderr.String(), "\n") {
		if strings.Contains(line, "attached") && !strings.Contains(line, "not attached: ") {
			t.Log(line)
		}
	}
	if n < 20 {
		t.Errorf("all attached %d hooks, want at least the skb tracepoints", n)
	}
	noPorts := udpNoPorts(t, p.PeerNSName)
	sendUDP(t, p, p.PeerIP, 6553, 2)
	for udpNoPorts(t, p.PeerNSName) < noPorts+2 {
		if time.Now().After(deadline) {
			t.Fatal("the peer did not drop the datagrams")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopping := time.Now()
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap trace all: %v\n%s", err, tr.stderr)
	}
	t.Logf("all: stopped in %.1f s", time.Since(stopping).Seconds())
	ifaces, pkts := readPcapng(t, out)
	hooksByID := map[uint64][]string{}
	for _, pk := range pkts {
		hooksByID[pk.PacketID] = append(hooksByID[pk.PacketID], ifaces[pk.Interface].Name)
	}
	found := false
	for _, hooks := range hooksByID {
		if len(hooks) >= 3 && slices.ContainsFunc(hooks, func(h string) bool { return strings.Contains(h, "kfree_skb") }) {
			found = true
		}
	}
	if !found {
		t.Errorf("no datagram seen at 3 hooks or more ending in kfree_skb: %v", hooksByID)
	}
	testutils.WaitProgramsUnloaded(t, "probe_", before)
}

// requireAllInSeconds skips a test of `trace all` that attaches it more
// than once (TestTracePatternAll attaches it once, on every kernel) where
// all means one kprobe link per function because the kernel has no kprobe-multi (Linux
// before 5.18, or built without CONFIG_FPROBE as Debian's 6.1 is): some
// 1,500 single-function attachments and detachments, each waiting for an
// RCU grace period, take minutes in the emulated guests. Where kprobes do
// not work at all, all is the tracepoints and the test runs.
func requireAllInSeconds(t *testing.T) {
	t.Helper()
	r, err := probe.NewResolver()
	if err != nil {
		t.Fatal(err)
	}
	if err, ok := r.FunctionKinds("ip_rcv")["kprobe"]; !ok || err != nil {
		return
	}
	kconfig.SkipOrFail(t, r.HaveKprobeMulti(), "CONFIG_FPROBE")
}
