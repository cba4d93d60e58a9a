package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// TestTraceCLIMaxRate: with --max-rate, a burst of drops is captured up to
// the bound and the rest is reported as shed, on stderr and in the file's
// statistics (isb_osdrop and the ISB comment), not as lost. Guest-safe.
func TestTraceCLIMaxRate(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	const rate, sent = 50, 2000
	p := testutils.NewVethPair(t)
	out := filepath.Join(t.TempDir(), "bounded.pcapng")
	start := time.Now()
	tr := startRun(t, "trace", "kprobe:kfree_skb:arg1", "proto", "ip", "--max-rate", strconv.Itoa(rate), "-w", out, "udp port 6546")
	tr.waitAttached(t, out)
	noPorts := udpNoPorts(t, p.PeerNSName)
	sendUDP(t, p, p.PeerIP, 6546, sent)
	deadline := time.Now().Add(10 * time.Second)
	for udpNoPorts(t, p.PeerNSName) < noPorts+sent {
		if time.Now().After(deadline) {
			t.Fatalf("the peer did not drop the %d datagrams", sent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap trace: %v\n%s", err, tr.stderr)
	}
	elapsed := time.Since(start)
	m := regexp.MustCompile(`captured (\d+), lost (\d+).*, shed (\d+) \(--max-rate\)`).FindStringSubmatch(tr.stderr.String())
	if m == nil {
		t.Fatalf("stderr names no shed packets:\n%s", tr.stderr)
	}
	captured, _ := strconv.Atoi(m[1])
	shed, _ := strconv.Atoi(m[3])
	bound := int(float64(runtime.NumCPU()) * (rate*elapsed.Seconds() + rate/10 + 1))
	if captured < rate/10 || captured > bound || captured+shed < sent {
		t.Errorf("captured %d, shed %d of %d sent: want %d..%d captured (%d pps per CPU over %v) and the rest shed", captured, shed, sent, rate/10, bound, rate, elapsed)
	}
	_, pkts := readPcapng(t, out)
	if len(pkts) != captured {
		t.Errorf("%d packets in the file, stderr says %d captured", len(pkts), captured)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := rd.Next(); err != nil {
			break
		}
	}
	st := rd.Stats()
	if len(st) == 0 || st[0].Stats.Skipped < uint64(shed) || st[0].Stats.Lost != 0 ||
		!strings.Contains(st[0].Comment, "shed by the rate bound: "+strconv.Itoa(shed)) {
		t.Errorf("statistics block %+v: want isb_osdrop >= %d, no isb_ifdrop, and the shed count in the comment", st, shed)
	}
}

// TestMaxRateNegative: a negative --max-rate is refused with an example,
// by every capture command that takes it, before anything is loaded.
func TestMaxRateNegative(t *testing.T) {
	for _, args := range [][]string{
		{"trace", "tp_btf:net_dev_xmit", "--max-rate", "-5"},
		{"tc", "dev", "lo", "--max-rate", "-5"},
		{"xdp", "dev", "lo", "--max-rate", "-5"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), strings.NewReader(""), io.Discard, &stderr, args)
		if err == nil || !strings.Contains(err.Error(), "max-rate -5") || !strings.Contains(err.Error(), "--max-rate 10000") {
			t.Errorf("%v: error %v, want it to name max-rate -5 and an example", args, err)
		}
	}
}
