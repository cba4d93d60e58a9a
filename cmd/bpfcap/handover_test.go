package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// TestTraceHandedOverHook: net_dev_xmit fires after the driver took the
// sk_buff. Named, it is attached, with a line on stderr and in its
// interface's description naming net_dev_start_xmit; a glob passes it
// over, counted on stderr and listed with why under -v, and the glob's
// other hooks capture the packets.
func TestTraceHandedOverHook(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	const port = 6557
	p := testutils.NewVethPair(t)
	capture := func(args ...string) (stderr string, ifaces map[string]string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "handover.pcapng")
		// Even the one named hook gets the pattern's waits: in an emulated
		// guest on a loaded machine loading takes more than 20 s at times.
		tr := startPatternRun(t, append(append([]string{"trace"}, args...), "-w", out, "udp dst port "+strconv.Itoa(port))...)
		tr.waitAttached(t, out)
		sendDropped(t, p, port, 3)
		if err := tr.stop(t); err != nil {
			t.Fatalf("bpfcap trace %v: %v\n%s", args, err, tr.stderr)
		}
		idbs, pkts := readPcapng(t, out)
		ifaces = map[string]string{}
		for _, pk := range pkts {
			ifaces[idbs[pk.Interface].Name] = idbs[pk.Interface].Description
		}
		return tr.stderr.String(), ifaces
	}

	stderr, ifaces := capture("tp_btf:net_dev_xmit")
	const warn = "tp_btf:net_dev_xmit:arg1 fires after the driver took the packet"
	if !strings.Contains(stderr, warn) || !strings.Contains(stderr, "tp_btf:net_dev_start_xmit sees the same packets just before") {
		t.Errorf("named net_dev_xmit: stderr lacks the line saying it fires after the driver took the packet:\n%s", stderr)
	}
	if desc, ok := ifaces["tp_btf:net_dev_xmit:arg1"]; !ok || !strings.Contains(desc, "fires after the driver took the sk_buff") {
		t.Errorf("named net_dev_xmit: no packet there, or its interface description does not say when it fires: %q (interfaces %v)", desc, ifaces)
	}

	stderr, ifaces = capture("tp_btf:net_dev_*", "-v")
	if !strings.Contains(stderr, "not attached: tp_btf:net_dev_xmit: fires after the driver took the sk_buff") ||
		!strings.Contains(stderr, "tp_btf:net_dev_start_xmit sees the same packets before") {
		t.Errorf("glob: stderr does not list net_dev_xmit as passed over, with why:\n%s", stderr)
	}
	if strings.Contains(stderr, warn) {
		t.Errorf("glob: stderr warns about a hook it did not attach:\n%s", stderr)
	}
	if _, ok := ifaces["tp_btf:net_dev_xmit:arg1"]; ok {
		t.Errorf("glob captured at net_dev_xmit: %v", ifaces)
	}
	if _, ok := ifaces["tp_btf:net_dev_start_xmit:arg1"]; !ok {
		t.Errorf("glob: no packet at net_dev_start_xmit: %v", ifaces)
	}
}
