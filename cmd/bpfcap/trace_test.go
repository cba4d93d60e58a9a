package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/probe"
)

// Tests named TestTraceHost* need tools only the host has (iptables,
// tshark, tcpdump, bpftool, a Go toolchain); the others run in minimal
// VM guests too.

// traceRun runs `bpfcap ARGS...` in-process until cancel is called; the
// output file (when -w is given) exists once the hooks are attached.
type traceRun struct {
	cancel context.CancelFunc
	done   chan error
	stderr *testutils.SyncBuffer
	// attachWait and stopWait bound how long attaching and stopping may
	// take.
	attachWait, stopWait time.Duration
}

func startRun(t *testing.T, args ...string) *traceRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traceRun{cancel: cancel, done: make(chan error, 1), stderr: &testutils.SyncBuffer{}, attachWait: 20 * time.Second, stopWait: 15 * time.Second}
	go func() { tr.done <- run(ctx, strings.NewReader(""), io.Discard, tr.stderr, args) }()
	t.Cleanup(func() { tr.stop(t) })
	return tr
}

// startPatternRun is startRun for a pattern that attaches dozens of hooks
// (and tracking's own): in the emulated guests attaching and detaching
// them takes a minute.
func startPatternRun(t *testing.T, args ...string) *traceRun {
	t.Helper()
	tr := startRun(t, args...)
	tr.attachWait, tr.stopWait = 2*time.Minute, time.Minute
	return tr
}

// stop cancels the run and returns its error.
func (tr *traceRun) stop(t *testing.T) error {
	t.Helper()
	tr.cancel()
	select {
	case err, ok := <-tr.done:
		if ok {
			close(tr.done)
		}
		return err
	case <-time.After(tr.stopWait):
		t.Fatalf("bpfcap did not stop within %v of cancel; stderr:\n%s", tr.stopWait, tr.stderr)
	}
	return nil
}

// waitAttached waits until path exists (runCapture creates the output
// only once every hook is attached) or the run failed.
func (tr *traceRun) waitAttached(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(tr.attachWait)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-tr.done:
			t.Fatalf("bpfcap ended before attaching: %v; stderr:\n%s", err, tr.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output file after %v; stderr:\n%s", tr.attachWait, tr.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPcapng(t *testing.T, path string) ([]pcapng.Interface, []*pcapng.Packet) {
	t.Helper()
	ifaces, pkts, _ := readPcapngStats(t, path)
	return ifaces, pkts
}

// readPcapngStats reads a pcapng file bpfcap closed: its interfaces,
// packets and statistics blocks (at least one).
func readPcapngStats(t *testing.T, path string) ([]pcapng.Interface, []*pcapng.Packet, []pcapng.ReadStats) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var pkts []*pcapng.Packet
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		pkts = append(pkts, p)
	}
	if len(rd.Stats()) == 0 {
		t.Errorf("%s has no interface statistics block: not closed cleanly", path)
	}
	return rd.Interfaces(), pkts, rd.Stats()
}

// sendUDP sends datagrams from the host end's namespace to dst:port.
func sendUDP(t *testing.T, p *testutils.VethPair, dst net.IP, port, n int) {
	t.Helper()
	err := testutils.Do(t, p.HostNS, func() error {
		// Unconnected, so the ICMP errors the drops cause are not
		// reported on later writes.
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		to := &net.UDPAddr{IP: dst, Port: port}
		for range n {
			if _, err := c.WriteToUDP([]byte("bpfcap"), to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send UDP: %v", err)
	}
}

// sendDropped sends n datagrams to port of the peer, where no socket
// listens, and returns once the peer's stack dropped them all (its UDP
// NoPorts counter says so).
func sendDropped(t *testing.T, p *testutils.VethPair, port, n int) {
	t.Helper()
	noPorts := udpNoPorts(t, p.PeerNSName)
	sendUDP(t, p, p.PeerIP, port, n)
	waitNoPorts(t, p, noPorts+n)
}

// waitNoPorts waits until the peer's UDP NoPorts counter reaches want.
func waitNoPorts(t *testing.T, p *testutils.VethPair, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for udpNoPorts(t, p.PeerNSName) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the peer's stack did not drop the datagrams (UDP NoPorts below %d)", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// udpNoPorts reads the UDP NoPorts counter (datagrams to closed ports) of
// the named network namespace.
func udpNoPorts(t *testing.T, ns string) int {
	t.Helper()
	out, err := testutils.Exec(ns, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "NoPorts" && i < len(f) {
				v, err := strconv.Atoi(f[i])
				if err != nil {
					t.Fatalf("NoPorts %q: %v", f[i], err)
				}
				return v
			}
		}
	}
	t.Fatalf("no Udp NoPorts in /proc/net/snmp of %s", ns)
	return 0
}

// TestTraceCLIDropNoSocket runs the README's first command in-process on drops that
// need no iptables (UDP to a closed port: NO_SOCKET) and reads the file
// back with bpfcap's own reader. Guest-safe.
func TestTraceCLIDropNoSocket(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	before := testutils.CountPrograms(t, "probe_")
	p := testutils.NewVethPair(t)
	out := filepath.Join(t.TempDir(), "drops.pcapng")
	tr := startRun(t, "trace", "kprobe:kfree_skb:arg1", "proto", "ip", "-w", out, "udp port 6544")
	tr.waitAttached(t, out)
	// Stop only once the peer's stack dropped all six; the run drains
	// the ring after cancel.
	sendDropped(t, p, 6544, 3)
	sendDropped(t, p, 6545, 3) // dropped too, but filtered out
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap trace: %v\n%s", err, tr.stderr)
	}
	if !strings.Contains(tr.stderr.String(), "attached") && !strings.Contains(tr.stderr.String(), "kprobe:") {
		t.Errorf("stderr does not say what was attached:\n%s", tr.stderr)
	}
	ifaces, pkts := readPcapng(t, out)
	if len(pkts) != 3 {
		t.Fatalf("%d packets in the file, want the 3 datagrams to port 6544; stderr:\n%s", len(pkts), tr.stderr)
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	reasons := probe.HaveDropReasons(kernel)
	for _, pk := range pkts {
		if ifaces[pk.Interface].LinkType != pcapng.LinkTypeRaw {
			t.Errorf("link type %v, want raw IP", ifaces[pk.Interface].LinkType)
		}
		if len(pk.Data) < 28 || pk.Data[9] != 17 || int(pk.Data[22])<<8|int(pk.Data[23]) != 6544 {
			t.Errorf("not a UDP datagram to 6544: % x", pk.Data)
		}
		if reasons == nil && !strings.Contains(pk.Comment, "NO_SOCKET") {
			t.Errorf("comment %q does not name the drop reason NO_SOCKET", pk.Comment)
		}
		if reasons != nil && strings.Contains(pk.Comment, "reason=") {
			t.Errorf("comment %q names a drop reason on a kernel without them (%v)", pk.Comment, reasons)
		}
	}
	testutils.WaitProgramsUnloaded(t, "probe_", before)
	// All but the drop reason works without drop reasons (before 5.17).
	if !t.Failed() {
		kconfig.SkipOrFailFeature(t, reasons, "drop reasons", "5.17")
	}
}

// TestTraceHostNetfilterDrops proves the README's first command: TCP SYNs dropped by a
// netfilter rule in a test netns show up, read by tshark, with the drop
// reason NETFILTER_DROP; with 'tcp port 6666' other drops are excluded.
func TestTraceHostNetfilterDrops(t *testing.T) {
	testutils.RequireRoot(t)
	for _, tool := range []string{"iptables", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("host test needs %s: %v", tool, err)
		}
	}
	p := testutils.NewVethPair(t)
	for _, port := range []string{"6666", "7777"} {
		if out, err := testutils.Exec(p.PeerNSName, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "DROP"); err != nil {
			t.Fatalf("iptables: %v\n%s", err, out)
		}
	}
	syn := func(port int) {
		testutils.Do(t, p.HostNS, func() error {
			c, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", p.PeerIP, port), 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return nil
		})
	}
	capture := func(t *testing.T, filter ...string) string {
		out := filepath.Join(t.TempDir(), "drops.pcapng")
		args := append([]string{"trace", "kprobe:kfree_skb:arg1", "proto", "ip", "-w", out}, filter...)
		tr := startRun(t, args...)
		tr.waitAttached(t, out)
		syn(6666)
		syn(7777)
		if err := tr.stop(t); err != nil {
			t.Fatalf("bpfcap %v: %v\n%s", args, err, tr.stderr)
		}
		return out
	}
	tshark := func(t *testing.T, file, display string) []string {
		out, err := exec.Command("tshark", "-r", file, "-Y", display, "-T", "fields", "-e", "tcp.dstport", "-e", "frame.comment").CombinedOutput()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, out)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" && !strings.HasPrefix(l, "Running as user") {
				lines = append(lines, l)
			}
		}
		return lines
	}

	t.Run("unfiltered", func(t *testing.T) {
		file := capture(t)
		syns := tshark(t, file, "tcp.flags.syn==1 && tcp.dstport==6666")
		if len(syns) == 0 {
			t.Fatal("tshark sees no SYN to 6666 in the capture")
		}
		for _, l := range syns {
			if !strings.Contains(l, "NETFILTER_DROP") {
				t.Errorf("SYN without NETFILTER_DROP in its comment: %q", l)
			}
		}
		if len(tshark(t, file, "tcp.dstport==7777")) == 0 {
			t.Error("the other drop (port 7777) is missing without a filter")
		}
	})
	t.Run("filtered", func(t *testing.T) {
		file := capture(t, "tcp port 6666")
		if n := len(tshark(t, file, "tcp.flags.syn==1 && tcp.dstport==6666")); n == 0 {
			t.Fatal("tshark sees no SYN to 6666 with the filter")
		}
		if other := tshark(t, file, "!(tcp.port==6666)"); len(other) > 0 {
			t.Errorf("filter 'tcp port 6666' let other packets through: %q", other)
		}
	})
}

// TestTraceHostLivePipe: `bpfcap trace tracepoint:net:net_dev_start_xmit proto
// eth -c 5 | tcpdump -r -` prints the 5 packets while traffic flows.
func TestTraceHostLivePipe(t *testing.T) {
	testutils.RequireRoot(t)
	bin := testutils.BuildBinary(t)
	p := testutils.NewVethPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Traffic that flows the whole time: a ping every 50 ms.
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", p.HostNSName, "ping", "-i", "0.05", p.PeerIP.String())
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); ping.Wait() }()

	cmd := exec.CommandContext(ctx, "sh", "-c", bin+" trace tracepoint:net:net_dev_start_xmit proto eth -c 5 | tcpdump -n -r -")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pipeline: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 {
		t.Fatalf("tcpdump printed %d lines, want 5:\n%s\nstderr:\n%s", len(lines), out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "reading from file -, link-type EN10MB") {
		t.Errorf("tcpdump did not read Ethernet pcapng from the pipe:\n%s", stderr.String())
	}
}

// TestTraceHostBadInput: each bad input is a clear message and exit 2,
// and nothing stays attached (bpftool's link count and our program count).
func TestTraceHostBadInput(t *testing.T) {
	testutils.RequireRoot(t)
	linksBefore := bpftoolLinks(t)
	progsBefore := testutils.CountPrograms(t, "probe_")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown function", []string{"trace", "kprobe:no_such_function_xyz"}, []string{"no_such_function_xyz not found", "bpfcap list"}},
		{"not an sk_buff", []string{"trace", "kprobe:ip_rcv:arg2"}, []string{"argument 2 of", "not struct sk_buff *", "the sk_buff is arg1"}},
		{"unknown tracepoint", []string{"trace", "tracepoint:net:no_such_tp"}, []string{"unknown tracepoint net:no_such_tp", "bpfcap list"}},
		{"malformed spec", []string{"trace", "kprobe:kfree_skb:second"}, []string{"malformed hook spec", "argN"}},
		{"unknown kind", []string{"trace", "kprobes:kfree_skb"}, []string{"unknown hook kind \"kprobes\""}},
		{"kretprobe", []string{"trace", "kretprobe:kfree_skb"}, []string{"use kprobe:kfree_skb or fexit:kfree_skb"}},
		{"bad filter", []string{"trace", "tracepoint:net:net_dev_xmit", "tcp", "prot", "80"}, []string{"syntax error"}},
		{"second hook bad", []string{"trace", "tracepoint:net:net_dev_xmit", "kprobe:ip_rcv:arg2"}, []string{"the sk_buff is arg1"}},
		{"bad proto", []string{"trace", "tracepoint:net:net_dev_xmit", "proto", "sll9"}, []string{"proto \"sll9\"", "eth"}},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), strings.NewReader(""), io.Discard, &stderr, tc.args)
		if err == nil {
			t.Errorf("%s: %v succeeded", tc.name, tc.args)
			continue
		}
		if code := exitCode(err, &stderr); code != 2 {
			t.Errorf("%s: exit code %d, want 2", tc.name, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message %q does not say %q", tc.name, err, w)
			}
		}
	}
	testutils.WaitProgramsUnloaded(t, "probe_", progsBefore)
	if after := bpftoolLinks(t); after > linksBefore {
		t.Errorf("bpftool link show: %d probe links before, %d after", linksBefore, after)
	}
}

// TestTraceHostNoPrivilege runs the binary as nobody: a clear message
// naming the missing capabilities, exit code 2.
func TestTraceHostNoPrivilege(t *testing.T) {
	testutils.RequireRoot(t)
	bin := testutils.BuildBinary(t)
	cmd := exec.Command(bin, "trace", "kprobe:kfree_skb:arg1", "proto", "ip")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("as nobody: %v (want exit 2); stderr:\n%s", err, stderr.String())
	}
	for _, w := range []string{"needs privilege", "CAP_BPF", "sudo"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr %q does not say %q", stderr.String(), w)
		}
	}
}

// bpftoolLinks counts, with bpftool, the links whose program comes from
// bpf/probe.c (named probe_*): other tests on the machine attach their own.
func bpftoolLinks(t *testing.T) int {
	t.Helper()
	var links []struct {
		ProgID int `json:"prog_id"`
	}
	var progs []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	for _, q := range []struct {
		obj string
		v   any
	}{{"link", &links}, {"prog", &progs}} {
		out, err := exec.Command("bpftool", "-j", q.obj, "show").Output()
		if err != nil {
			t.Fatalf("bpftool %s show: %v", q.obj, err)
		}
		if err := json.Unmarshal(out, q.v); err != nil {
			t.Fatalf("bpftool %s show: %v", q.obj, err)
		}
	}
	ours := map[int]bool{}
	for _, p := range progs {
		if strings.HasPrefix(p.Name, "probe_") {
			ours[p.ID] = true
		}
	}
	n := 0
	for _, l := range links {
		if ours[l.ProgID] {
			n++
		}
	}
	return n
}
