package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// TestXDPHostTshark: tshark reads the capture of 'udp port 53' and shows
// each packet's XDP verdict (frame.verdict.ebpf_xdp) next to its ports.
func TestXDPHostTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("tshark is needed on the host: %v", err)
	}
	s := newXDPSetup(t, firewall.Options{})
	warmUp(t, s)
	out := filepath.Join(t.TempDir(), "dns.pcapng")
	os.Chmod(filepath.Dir(out), 0o755)
	r := xdpStart(t, nil, "xdp", s.pin, "udp port 53", "-w", out)
	r.waitFile(t, out)
	want := dnsTraffic(t, s, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	cmd := exec.Command("tshark", "-r", out, "-T", "fields", "-E", "separator=,",
		"-e", "udp.srcport", "-e", "udp.dstport", "-e", "frame.verdict.ebpf_xdp", "-e", "frame.comment")
	o, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(o)), "\n") {
		f := strings.SplitN(line, ",", 4)
		if len(f) < 3 || f[2] == "" {
			t.Fatalf("tshark shows no verdict: %q", line)
		}
		sp, dp := f[0], f[1]
		if n := len(sp); n > 0 && sp != "53" && sp != "7" {
			sp = "0"
		}
		if dp != "53" && dp != "9" && dp != "7" {
			dp = "0"
		}
		got = append(got, fmt.Sprintf("%s->%s:%s", sp, dp, f[2]))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tshark shows %v, want %v\n%s", got, want, o)
	}
	t.Logf("tshark:\n%s", o)
}

// TestXDPHostKilledCapture: a bpfcap that runs holds its slots (a second
// one is refused as busy); once it is killed with SIGKILL the next run
// empties the slots it left, with a notice, and captures.
func TestXDPHostKilledCapture(t *testing.T) {
	bin := testutils.BuildBinary(t)
	s := newXDPSetup(t, firewall.Options{})
	warmUp(t, s)
	first := filepath.Join(t.TempDir(), "first.pcapng")
	cmd := exec.Command(bin, "xdp", s.pin, "udp", "-w", first)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(first); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first bpfcap did not attach")
		}
		time.Sleep(10 * time.Millisecond)
	}
	err, _ := runOnce("xdp", s.pin, "udp", "-c", "1")
	if !errors.Is(err, xdpcap.ErrBusy) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("second bpfcap while the first runs: %v; want busy naming pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	h, err := xdpcap.OpenHook(s.pin)
	if err != nil {
		t.Fatal(err)
	}
	occ, _ := h.Occupants()
	h.Close()
	if len(occ) != 5 {
		t.Fatalf("after SIGKILL the hook holds %d programs, want 5 stale ones", len(occ))
	}

	out := filepath.Join(t.TempDir(), "second.pcapng")
	r := xdpStart(t, nil, "xdp", s.pin, "udp port 53", "-w", out)
	r.waitFile(t, out)
	want := dnsTraffic(t, s, 1)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	if n := strings.Count(r.stderr.String(), "left full by a capture that did not exit cleanly"); n != 5 {
		t.Fatalf("%d notices about stale slots, want 5:\n%s", n, r.stderr)
	}
	pkts, _ := xdpReadPcapng(t, out)
	if got := flows(t, pkts); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("captured %v, want %v", got, want)
	}
	assertHookEmpty(t, s.pin)
}
