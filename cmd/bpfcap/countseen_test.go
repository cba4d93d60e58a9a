package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestTraceCountSeen: trace counts the packets a hook sees only with
// --count-seen, as tc and xdp do. Without it the exit line has no "seen"
// figure, the file no isb_ifrecv, and the interface description says why
// and how to count them; with it the hook counts at least the packets it
// matched, and the file carries the count.
func TestTraceCountSeen(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	const port = 6558
	const hookName = "tp_btf:net_dev_start_xmit:arg1"
	p := testutils.NewVethPair(t)
	for _, count := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "seen.pcapng")
		args := []string{"trace", "tp_btf:net_dev_start_xmit", "-w", out}
		if count {
			args = append(args, "--count-seen")
		}
		tr := startPatternRun(t, append(args, "udp dst port "+strconv.Itoa(port))...)
		tr.waitAttached(t, out)
		sendDropped(t, p, port, 3)
		if err := tr.stop(t); err != nil {
			t.Fatalf("bpfcap %v: %v\n%s", args, err, tr.stderr)
		}
		stderr := tr.stderr.String()
		idbs, _, stats := readPcapngStats(t, out)
		if len(idbs) != 1 || len(stats) == 0 {
			t.Fatalf("--count-seen=%v: interfaces %v, statistics %v", count, idbs, stats)
		}
		last := stats[len(stats)-1].Stats
		if last.Matched < 3 || last.Captured < 3 {
			t.Errorf("--count-seen=%v: statistics %+v, want the 3 datagrams matched and captured", count, last)
		}
		desc := idbs[0].Description
		if !count {
			if !strings.Contains(stderr, hookName+": matched ") || strings.Contains(stderr, "seen") {
				t.Errorf("without --count-seen: the exit line shows a seen figure or is missing:\n%s", stderr)
			}
			if last.SeenCounted {
				t.Errorf("without --count-seen: the file has isb_ifrecv %d", last.Seen)
			}
			if !strings.Contains(desc, "packets seen are not counted (--count-seen counts them)") {
				t.Errorf("without --count-seen: interface description %q does not say the packets seen are not counted", desc)
			}
			continue
		}
		m := regexp.MustCompile(regexp.QuoteMeta(hookName) + `: seen (\d+), matched (\d+),`).FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("with --count-seen: no seen figure on the exit line:\n%s", stderr)
		}
		if seen, _ := strconv.Atoi(m[1]); seen < 3 {
			t.Errorf("with --count-seen: seen %d, want at least the 3 datagrams:\n%s", seen, stderr)
		}
		if !last.SeenCounted || last.Seen < last.Matched {
			t.Errorf("with --count-seen: file statistics %+v, want isb_ifrecv at least the matched count", last)
		}
		if strings.Contains(desc, "not counted") {
			t.Errorf("with --count-seen: interface description %q says the packets seen are not counted", desc)
		}
	}
}
