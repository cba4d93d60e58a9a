package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/probe"
)

// TestJourneyLiveEnds: the live view prints a journey when its packet is
// freed (before the capture ends), when no hop came for the idle time,
// when too many are open (the oldest), a packet without an id at once, and
// the rest at Close; each block as bpfcap journey prints it.
func TestJourneyLiveEnds(t *testing.T) {
	var out testutils.SyncBuffer
	jp := newJourneyPrinter(&out, 100*time.Millisecond)
	rx, _ := jp.AddInterface(pcapng.Interface{Name: "tp_btf:netif_receive_skb"})
	free, _ := jp.AddInterface(pcapng.Interface{Name: "tp_btf:kfree_skb"})
	t0 := time.Unix(1700000000, 0)
	write := func(ifc int, id uint64, at time.Duration, reason, comment string) {
		t.Helper()
		p := &pcapng.Packet{Interface: ifc, Timestamp: t0.Add(at), Flags: pcapng.HasPacketID | pcapng.HasNetns,
			PacketID: id, Netns: 9, Device: "veth1", DropReason: reason, Comment: comment, VerdictType: pcapng.VerdictNone}
		if id == 0 {
			p.Flags = 0
		}
		if err := jp.WritePacket(p); err != nil {
			t.Fatal(err)
		}
		if err := jp.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Freed: printed at once, hops in time order.
	write(free, 0xa, 3*time.Microsecond, "NETFILTER_DROP", "location=nf_hook_slow+0x9d")
	write(rx, 0xa, time.Microsecond, "", "")
	// The receive hop came after the free: another packet, still open.
	if !regexp.MustCompile(`^packet 0xa at [0-9:.]+ \(1 hop\)\n  tp_btf:kfree_skb +\+0s +veth1 +netns 9 +-\n  dropped: NETFILTER_DROP at nf_hook_slow\+0x9d\n$`).MatchString(out.String()) {
		t.Fatalf("want the freed packet's journey printed at once, and only it:\n%s", out.String())
	}
	// No id: printed at once.
	write(rx, 0, 5*time.Microsecond, "", "")
	if !strings.Contains(out.String(), "packet (no id) at ") {
		t.Fatalf("a packet without an id is not printed at once:\n%s", out.String())
	}
	// Idle: 0xa's second journey and 0xb end once quiet.
	write(rx, 0xb, 10*time.Microsecond, "", "")
	write(rx, 0xb, 12*time.Microsecond, "", "")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "packet 0xa at ")+strings.Count(out.String(), "packet 0xb at ") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("idle journeys not printed:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !regexp.MustCompile(`packet 0xb at [0-9:.]+ \(2 hops in 2µs\)\n  tp_btf:netif_receive_skb +\+0s +veth1 +netns 9 +-\n  tp_btf:netif_receive_skb +\+2µs `).MatchString(out.String()) {
		t.Errorf("idle journey of 0xb:\n%s", out.String())
	}
	// Bounded: one more than maxOpenJourneys open packets prints the
	// oldest.
	before := out.String()
	for i := range maxOpenJourneys + 1 {
		p := &pcapng.Packet{Interface: rx, Timestamp: t0, Flags: pcapng.HasPacketID, PacketID: 0x1000 + uint64(i), VerdictType: pcapng.VerdictNone}
		if err := jp.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := jp.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimPrefix(out.String(), before); !strings.Contains(got, "packet 0x1000 at ") || strings.Contains(got, "packet 0x1001 at ") {
		t.Errorf("past %d open journeys, want the oldest (0x1000) printed, and only it:\n%.300s", maxOpenJourneys, got)
	}
	if err := jp.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\npacket 0x"); n < maxOpenJourneys+3 {
		t.Errorf("Close printed %d blocks in all, want every open journey", n)
	}
}

// journeyBlockRE and journeyHopRE read the live view's blocks.
var (
	journeyBlockRE = regexp.MustCompile(`^packet (0x[0-9a-f]+|\(no id\)) at \d\d:\d\d:\d\d\.\d{6} \((1 hop|(\d+) hops in \S+)\)$`)
	journeyHopRE   = regexp.MustCompile(`^  (\S+) +\+\S+ +(\S+) +(netns (\d+)|-) +(\S+)$`)
)

// liveBlock is one block of the live view, read back.
type liveBlock struct {
	id      string
	hops    []liveHop
	dropped string
	// finished: the empty line between it and the next block came.
	finished bool
}

type liveHop struct{ hook, dev, netns string }

// parseJourneyBlocks reads the live view's text (a terminal's \r\n line
// ends too), failing on any line that is not part of a block.
func parseJourneyBlocks(t *testing.T, text string) []liveBlock {
	t.Helper()
	var blocks []liveBlock
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		switch {
		case l == "":
			if len(blocks) > 0 {
				blocks[len(blocks)-1].finished = true
			}
		case journeyBlockRE.MatchString(l):
			blocks = append(blocks, liveBlock{id: journeyBlockRE.FindStringSubmatch(l)[1]})
		case len(blocks) == 0:
			t.Fatalf("line %q before the first block:\n%s", l, text)
		case journeyHopRE.MatchString(l):
			m := journeyHopRE.FindStringSubmatch(l)
			b := &blocks[len(blocks)-1]
			b.hops = append(b.hops, liveHop{m[1], m[2], m[4]})
		case strings.HasPrefix(l, "  dropped: "):
			blocks[len(blocks)-1].dropped = strings.TrimPrefix(l, "  dropped: ")
		default:
			t.Fatalf("line %q is not part of a journey block:\n%s", l, text)
		}
	}
	return blocks
}

// TestJourneyLiveTerminal: `bpfcap trace 'tp_btf:*' FILTER` on a terminal
// prints each datagram dropped by the peer (closed port) as a journey
// block, from the sender's device and netns to kfree_skb in the peer's
// netns with the drop reason, while the capture runs (the packet is
// freed); stderr counts the hooks instead of naming them, the snap length
// is the short default, and the exit statistics are summarised.
func TestJourneyLiveTerminal(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	reasons := probe.HaveDropReasons(kernel) == nil
	master, slave := openPTY(t)
	p := testutils.NewVethPair(t)
	hostNS, peerNS := strconv.Itoa(int(nsInode(t, p.HostNSName))), strconv.Itoa(int(nsInode(t, p.PeerNSName)))
	var screen testutils.SyncBuffer
	go io.Copy(&screen, master)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &testutils.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, strings.NewReader(""), slave, stderr, []string{"trace", "tp_btf:*", "udp dst port 6561"})
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(stderr.String(), "bpfcap: capturing at") {
		select {
		case err := <-done:
			t.Fatalf("bpfcap ended before attaching: %v\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not attached after 2 min:\n%s", stderr)
		}
	}
	// Pattern mode's proto ip: cooked captures, whose snap length counts
	// their 16-byte header too (256 + 16).
	if !regexp.MustCompile(`bpfcap: capturing at \d+ hooks? \(tp_btf:\*\), link-type LINUX_SLL \(Linux cooked v1\), snapshot length 272 bytes\n`).MatchString(stderr.String()) {
		t.Errorf("the capturing line does not count the hooks or has another snap length:\n%s", stderr)
	}
	sendUDP(t, p, p.PeerIP, 6561, 3)
	// The blocks come while the capture runs: each packet is freed.
	var blocks []liveBlock
	// A block being printed may lack its last hops and its dropped line:
	// it is complete once the next block began or, with drop reasons, its
	// dropped line (the last) came.
	complete := func(b liveBlock) bool {
		if len(b.hops) < 3 || !(b.finished || !reasons || b.dropped != "") {
			return false
		}
		last := b.hops[len(b.hops)-1]
		return b.hops[0].dev == p.HostName && b.hops[0].netns == hostNS &&
			strings.HasPrefix(last.hook, "tp_btf:kfree_skb") && last.dev == p.PeerName && last.netns == peerNS
	}
	for {
		// Up to the last complete line.
		text := screen.String()
		blocks = parseJourneyBlocks(t, text[:strings.LastIndex(text, "\n")+1])
		n := 0
		for _, b := range blocks {
			if complete(b) {
				n++
			}
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("want 3 journeys from %s (netns %s) to kfree_skb on %s (netns %s) while the capture runs:\n%s", p.HostName, hostNS, p.PeerName, peerNS, screen.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, b := range blocks {
		if !complete(b) {
			continue
		}
		if b.id == "(no id)" {
			t.Errorf("a journey of several hops has no id: %+v", b)
		}
		// kfree_skb's location, symbolised, follows the reason.
		if reasons && !regexp.MustCompile(`^NO_SOCKET at \S+\+0x[0-9a-f]+$`).MatchString(b.dropped) {
			t.Errorf("journey %s ends with %q, want the drop reason NO_SOCKET and its location: %+v", b.id, b.dropped, b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("bpfcap trace: %v\n%s", err, stderr)
	}
	// At exit: the hooks that matched, and the totals.
	m := regexp.MustCompile(`(?m)^(\d+) hooks?: matched \d+, captured \d+, lost 0(, skipped \d+)? \((\d+) hooks? matched nothing; -v lists every hook\)$`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no totals line at exit:\n%s", stderr)
	}
	hooks, _ := strconv.Atoi(m[1])
	quiet, _ := strconv.Atoi(m[3])
	t.Logf("the terminal showed:\n%s", screen.String())
	listed := len(regexp.MustCompile(`(?m)^tp_btf:\S+: `).FindAllString(stderr.String(), -1))
	if listed != hooks-quiet || listed == 0 || quiet == 0 {
		t.Errorf("%d hook lines at exit, want the %d of %d hooks that matched:\n%s", listed, hooks-quiet, hooks, stderr)
	}
}

// patternFile captures three datagrams dropped by a veth peer with
// `bpfcap trace 'tp_btf:*' -w FILE` and returns the file and stderr.
func patternFile(t *testing.T, port int) (string, string) {
	t.Helper()
	p := testutils.NewVethPair(t)
	out := filepath.Join(t.TempDir(), "pattern.pcapng")
	tr := startPatternRun(t, "trace", "tp_btf:*", "-w", out, "udp dst port "+strconv.Itoa(port))
	tr.waitAttached(t, out)
	sendDropped(t, p, port, 3)
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap trace: %v\n%s", err, tr.stderr)
	}
	return out, tr.stderr.String()
}

// TestTracePatternInterfaces: a file of `trace 'tp_btf:*'` holds one
// interface per hook that captured (each with packets, in the order they
// first captured), far fewer than the hooks attached, at the pattern
// mode's snap length.
func TestTracePatternInterfaces(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	file, stderr := patternFile(t, 6562)
	m := regexp.MustCompile(`capturing at (\d+) hooks`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no hook count on stderr:\n%s", stderr)
	}
	attached, _ := strconv.Atoi(m[1])
	ifaces, pkts := readPcapng(t, file)
	perIf := make([]int, len(ifaces))
	firstAt := make([]int, len(ifaces))
	for i, pk := range pkts {
		if perIf[pk.Interface] == 0 {
			firstAt[pk.Interface] = i
		}
		perIf[pk.Interface]++
	}
	for i, n := range perIf {
		if n == 0 {
			t.Errorf("interface %d (%s) has no packet", i, ifaces[i].Name)
		}
		if i > 0 && firstAt[i] < firstAt[i-1] {
			t.Errorf("interface %d (%s) first captured before interface %d", i, ifaces[i].Name, i-1)
		}
		// Pattern mode's proto ip writes cooked captures: the snap
		// length counts their 16-byte header too.
		want := uint32(patternSnaplen)
		if ifaces[i].LinkType == pcapng.LinkTypeLinuxSLL {
			want += 16
		}
		if ifaces[i].SnapLen != want {
			t.Errorf("interface %s (link type %d): snap length %d, want %d", ifaces[i].Name, ifaces[i].LinkType, ifaces[i].SnapLen, want)
		}
	}
	if len(ifaces) < 3 || len(ifaces) >= attached {
		t.Errorf("%d interfaces for %d hooks attached: want those that captured (at least 3: xmit, receive, kfree_skb)", len(ifaces), attached)
	}
}

// TestTracePatternHostTools: tcpdump and tshark read a file of `trace
// 'tp_btf:*'`, whose interfaces come as their hooks first capture, every
// packet of it.
func TestTracePatternHostTools(t *testing.T) {
	testutils.RequireRoot(t)
	for _, tool := range []string{"tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("host test needs %s: %v", tool, err)
		}
	}
	file, _ := patternFile(t, 6563)
	ifaces, pkts := readPcapng(t, file)
	out, err := exec.Command("tcpdump", "-nr", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "6563: UDP"); n != len(pkts) {
		t.Errorf("tcpdump read %d datagrams, the file holds %d packets:\n%s", n, len(pkts), out)
	}
	out, err = exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.interface_name", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(pkts) {
		t.Fatalf("tshark read %d packets, the file holds %d", len(lines), len(pkts))
	}
	for i, l := range lines {
		if want := ifaces[pkts[i].Interface].Name + "\t6563"; l != want {
			t.Errorf("tshark packet %d: %q, want %q", i+1, l, want)
		}
	}
}

// TestJourneyViewSelection: the journey view is what pattern mode prints
// on a terminal, and what --journey prints into a pipe; -l keeps a line
// per packet on a terminal, and a pipe without --journey gets pcapng;
// --journey with -w or -l is refused.
func TestJourneyViewSelection(t *testing.T) {
	capture := func(stdout io.Writer, o captureOptions) string {
		t.Helper()
		var errOut strings.Builder
		o.Count = 2
		src := &tickSource{interval: 5 * time.Millisecond}
		if err := runCapture(context.Background(), &cliEnv{stdout: stdout, stderr: &errOut}, &o,
			func(context.Context) (bpfcap.Source, error) { return src, nil }); err != nil {
			t.Fatalf("%+v: %v\n%s", o, err, errOut.String())
		}
		return errOut.String()
	}
	readTTY := func(master io.Reader, until string) string {
		t.Helper()
		var seen strings.Builder
		r := bufio.NewReader(master)
		for !strings.Contains(seen.String(), until) {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read the terminal: %v (so far %q)", err, seen.String())
			}
			seen.WriteString(l)
		}
		return seen.String()
	}

	master, slave := openPTY(t)
	stderr := capture(slave, captureOptions{Patterns: []string{"tp_btf:*"}})
	if got := readTTY(master, "packet (no id) at "); !journeyBlockRE.MatchString(strings.TrimSpace(got)) {
		t.Errorf("pattern mode on a terminal printed %q, want a journey block", got)
	}
	if !strings.Contains(stderr, "capturing at 1 hook (tp_btf:*)") || !strings.Contains(stderr, "1 hook: seen 2, matched 2, captured 2, lost 0\n") {
		t.Errorf("pattern mode's stderr:\n%s", stderr)
	}

	master, slave = openPTY(t)
	o := captureOptions{Patterns: []string{"tp_btf:*"}}
	o.tcpdump.Lines = true
	capture(slave, o)
	if got := readTTY(master, "fake:tick"); !strings.Contains(got, " fake:tick: ") || strings.Contains(got, "packet (no id)") {
		t.Errorf("pattern mode with -l on a terminal printed %q, want a line per packet", got)
	}

	var pipe strings.Builder
	capture(&pipe, captureOptions{Journey: true})
	if blocks := parseJourneyBlocks(t, pipe.String()); len(blocks) != 2 {
		t.Errorf("--journey into a pipe printed %d blocks, want 2:\n%s", len(blocks), pipe.String())
	}
	pipe.Reset()
	capture(&pipe, captureOptions{Patterns: []string{"all"}})
	if !strings.HasPrefix(pipe.String(), string(pcapngMagic)) {
		t.Errorf("pattern mode into a pipe without --journey wrote %.40q, want pcapng", pipe.String())
	}

	for _, o := range []captureOptions{{Journey: true, WriteFile: "x.pcapng"}, {Journey: true, tcpdump: tcpdumpOptions{Lines: true}}} {
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), "give one") {
			t.Errorf("%+v: %v, want a refusal", o, err)
		}
	}
}

// TestPrintStatsSummary: with hook patterns the exit statistics list the
// hooks that matched or lost packets, then the totals over every hook.
func TestPrintStatsSummary(t *testing.T) {
	var b strings.Builder
	printStats(&b,
		[]pcapng.Interface{{Name: "tp_btf:a"}, {Name: "tp_btf:b"}, {Name: "tp_btf:c"}, {Name: "tp_btf:d"}},
		[]pcapng.InterfaceStats{{Seen: 5, SeenCounted: true}, {Seen: 4, SeenCounted: true, Matched: 2, Captured: 2}, {Seen: 1, SeenCounted: true, Matched: 1, Lost: 1}, {SeenCounted: true}}, false)
	want := "tp_btf:b: seen 4, matched 2, captured 2, lost 0\n" +
		"tp_btf:c: seen 1, matched 1, captured 0, lost 1\n" +
		"4 hooks: seen 10, matched 3, captured 2, lost 1 (2 hooks matched nothing; -v lists every hook)\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	// A hook that does not count what it sees (its program serves many
	// functions): the total has no seen count, since it would be partial.
	b.Reset()
	printStats(&b,
		[]pcapng.Interface{{Name: "tp_btf:a"}, {Name: "kprobe:f"}},
		[]pcapng.InterfaceStats{{Seen: 5, SeenCounted: true, Matched: 1, Captured: 1}, {Matched: 1, Captured: 1}}, false)
	want = "tp_btf:a: seen 5, matched 1, captured 1, lost 0\n" +
		"kprobe:f: matched 1, captured 1, lost 0\n" +
		"2 hooks: matched 2, captured 2, lost 0\n"
	if b.String() != want {
		t.Errorf("with a hook that does not count: got\n%s\nwant\n%s", b.String(), want)
	}
}
