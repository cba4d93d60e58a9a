package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/probe"
)

// TestJourneyForeignFiles: files bpfcap did not write are refused with a
// reason, naming the file.
func TestJourneyForeignFiles(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.pcapng")
	f, err := os.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapgo.NewNgWriterInterface(f, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "someone else"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for file, why := range map[string]string{
		other: `written by "someone else"`,
		filepath.Join("..", "..", "testdata", "filter-demo.pcap"): "not pcapng",
		empty:             "empty",
		"journey_test.go": "not pcapng",
	} {
		_, err := readJourneys(nil, file)
		if !errors.Is(err, errNotBpfcap) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), why) {
			t.Errorf("journey %s: %v, want a not-bpfcap error saying %q", file, err, why)
		}
	}
}

// journeyCapture captures, in-process, three datagrams to a closed port
// of a veth peer at the sender's net_dev_start_xmit, the peer's
// netif_receive_skb and kfree_skb, and returns the file and the pair.
func journeyCapture(t *testing.T, port int) (string, *testutils.VethPair) {
	t.Helper()
	p := testutils.NewVethPair(t)
	out := filepath.Join(t.TempDir(), "journey.pcapng")
	tr := startRun(t, "trace", "tp_btf:net_dev_start_xmit", "tp_btf:netif_receive_skb", "tp_btf:kfree_skb",
		"proto", "eth", "-w", out, "udp dst port "+strconv.Itoa(port))
	tr.waitAttached(t, out)
	sendDropped(t, p, port, 3)
	if err := tr.stop(t); err != nil {
		t.Fatalf("bpfcap trace: %v\n%s", err, tr.stderr)
	}
	return out, p
}

type journeyJSON struct {
	ID    *string `json:"id"`
	First time.Time
	Hops  []struct {
		Hook        string    `json:"hook"`
		Time        time.Time `json:"time"`
		SincePrevNs int64     `json:"since_prev_ns"`
		Device      string    `json:"device"`
		Netns       *uint32   `json:"netns"`
		Verdict     string    `json:"verdict"`
		Reason      string    `json:"reason"`
	} `json:"hops"`
	Reason string `json:"reason"`
}

// runJourney runs `bpfcap journey ARGS...` and returns its output.
func runJourney(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	if err := run(context.Background(), strings.NewReader(""), &out, &errOut, append([]string{"journey"}, args...)); err != nil {
		t.Fatalf("bpfcap journey %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func nsInode(t *testing.T, name string) uint32 {
	t.Helper()
	ino, err := netnsfind.Inode("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

// TestJourneyTraceDrop: each of three datagrams dropped by the peer
// (closed port) is one journey sender xmit -> peer receive -> kfree_skb,
// in time order, with each hop's device and netns, and the drop reason at
// the end; --json and the text agree, and every packet of the file is in
// exactly one journey.
func TestJourneyTraceDrop(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	file, p := journeyCapture(t, 6551)
	hostNS, peerNS := nsInode(t, p.HostNSName), nsInode(t, p.PeerNSName)
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	reasons := probe.HaveDropReasons(kernel) == nil

	var journeys []journeyJSON
	sc := bufio.NewScanner(strings.NewReader(runJourney(t, "--json", file)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var j journeyJSON
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("--json line %q: %v", sc.Text(), err)
		}
		journeys = append(journeys, j)
	}
	_, pkts := readPcapng(t, file)
	hops := 0
	for _, j := range journeys {
		hops += len(j.Hops)
	}
	if hops != len(pkts) {
		t.Errorf("%d hops in %d journeys, %d packets in the file", hops, len(journeys), len(pkts))
	}
	want := []struct {
		hook, dev string
		netns     uint32
	}{
		{"tp_btf:net_dev_start_xmit:arg1", p.HostName, hostNS},
		{"tp_btf:netif_receive_skb:arg1", p.PeerName, peerNS},
		{"tp_btf:kfree_skb:arg1", p.PeerName, peerNS},
	}
	full := 0
	text := runJourney(t, file)
	for _, j := range journeys {
		if j.ID == nil {
			t.Errorf("journey without an id: %+v", j)
			continue
		}
		if len(j.Hops) != len(want) {
			t.Errorf("journey %s has %d hops, want 3: %+v", *j.ID, len(j.Hops), j.Hops)
			continue
		}
		full++
		for i, h := range j.Hops {
			w := want[i]
			if h.Hook != w.hook || h.Device != w.dev || h.Netns == nil || *h.Netns != w.netns {
				t.Errorf("journey %s hop %d: %s on %s netns %d (set: %v), want %s on %s netns %d", *j.ID, i, h.Hook, h.Device, deref(h.Netns), h.Netns != nil, w.hook, w.dev, w.netns)
			}
			if i > 0 && h.SincePrevNs != h.Time.Sub(j.Hops[i-1].Time).Nanoseconds() || h.SincePrevNs < 0 {
				t.Errorf("journey %s hop %d: since_prev_ns %d does not match the times", *j.ID, i, h.SincePrevNs)
			}
		}
		if reasons && (j.Reason != "NO_SOCKET" || j.Hops[2].Reason != "NO_SOCKET") {
			t.Errorf("journey %s ends with reason %q, want NO_SOCKET", *j.ID, j.Reason)
		}
		block := "packet " + *j.ID + " at "
		if !strings.Contains(text, block) {
			t.Errorf("the text output has no block %q:\n%s", block, text)
		}
	}
	if full != 3 {
		t.Errorf("%d full journeys, want one per datagram (3)", full)
	}
	if len(journeys) > 0 && journeys[0].ID != nil {
		one := runJourney(t, "--json", "--id", *journeys[0].ID, file)
		if n := strings.Count(one, "\n"); n < 1 || strings.Count(one, `"id":"`+*journeys[0].ID+`"`) != n {
			t.Errorf("--id %s printed other journeys:\n%s", *journeys[0].ID, one)
		}
	}
	// kfree_skb's location, symbolised, follows the reason.
	if reasons && len(regexp.MustCompile(`  dropped: NO_SOCKET at \S+\+0x[0-9a-f]+\n`).FindAllString(text, -1)) != 3 {
		t.Errorf("the text output does not end the 3 journeys with the drop reason and location:\n%s", text)
	}
}

func deref(p *uint32) uint32 {
	if p == nil {
		return 0
	}
	return *p
}

// TestJourneyHostTshark: the ids journey groups by are the ones Wireshark
// shows as frame.packet_id, hop for hop (an id whose packet was freed may
// come back on the next: its journeys follow each other).
func TestJourneyHostTshark(t *testing.T) {
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("host test needs tshark: %v", err)
	}
	file, _ := journeyCapture(t, 6552)
	// tshark: packet id (decimal) and interface name, in file order.
	out, err := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "frame.packet_id", "-e", "frame.interface_name", "-e", "frame.time_epoch").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	type row struct {
		hook string
		at   string
	}
	byID := map[string][]row{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 || f[0] == "" {
			t.Fatalf("tshark line %q has no packet id", l)
		}
		id, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			t.Fatalf("tshark packet id %q: %v", f[0], err)
		}
		hex := "0x" + strconv.FormatUint(id, 16)
		byID[hex] = append(byID[hex], row{f[1], f[2]})
	}
	sc := bufio.NewScanner(strings.NewReader(runJourney(t, "--json", file)))
	sc.Buffer(nil, 1<<20)
	n := 0
	journeyHooks := map[string][]string{}
	for sc.Scan() {
		var j journeyJSON
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		for _, h := range j.Hops {
			journeyHooks[*j.ID] = append(journeyHooks[*j.ID], h.Hook)
		}
		n++
	}
	for id, rows := range byID {
		slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.at, b.at) })
		var tsharkHooks []string
		for _, r := range rows {
			tsharkHooks = append(tsharkHooks, r.hook)
		}
		if !slices.Equal(journeyHooks[id], tsharkHooks) {
			t.Errorf("packet id %s: journeys %v, tshark %v", id, journeyHooks[id], tsharkHooks)
		}
	}
	if len(journeyHooks) != len(byID) || n != 3 {
		t.Errorf("%d journeys under %d ids, tshark shows %d packet ids (want 3 journeys)", n, len(journeyHooks), len(byID))
	}
}

// TestJourneyEndsAtFree: hops are put in time order whatever the file's
// order; an id that comes back after its packet was freed starts another
// journey; the drop reason and a location word of the comment end the
// journey's block.
func TestJourneyEndsAtFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pcapng.NewWriter(f, pcapng.WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	ifc := map[string]int{}
	for _, name := range []string{"tp_btf:netif_receive_skb:arg1", "tracepoint:skb:kfree_skb"} {
		if ifc[name], err = w.AddInterface(pcapng.Interface{Name: name, LinkType: pcapng.LinkTypeEthernet}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Unix(1700000000, 0)
	write := func(hook string, at time.Duration, reason, comment string) {
		t.Helper()
		p := &pcapng.Packet{Interface: ifc[hook], Timestamp: t0.Add(at), Data: make([]byte, 60), WireLen: 60,
			Flags: pcapng.HasPacketID | pcapng.HasNetns, PacketID: 0xabc, Netns: 7, Device: "eth0",
			DropReason: reason, Comment: comment}
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	// The file order differs from the time order.
	write("tracepoint:skb:kfree_skb", 3*time.Microsecond, "NETFILTER_DROP", "location=nf_hook_slow+0x9d")
	write("tp_btf:netif_receive_skb:arg1", time.Microsecond, "", "")
	write("tp_btf:netif_receive_skb:arg1", time.Millisecond, "", "")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	text := runJourney(t, path)
	want := "packet 0xabc at "
	if strings.Count(text, want) != 2 {
		t.Fatalf("want two journeys of 0xabc (freed, then reused):\n%s", text)
	}
	first := text[:strings.Index(text[1:], want)+1]
	if !regexp.MustCompile(`(?s)netif_receive_skb:arg1 +\+0s +eth0 +netns 7 +-\n +tracepoint:skb:kfree_skb +\+2µs +eth0 +netns 7 +-\n +dropped: NETFILTER_DROP at nf_hook_slow\+0x9d\n`).MatchString(first) {
		t.Errorf("first journey:\n%s", first)
	}
	if strings.Count(text, "dropped:") != 1 {
		t.Errorf("the second journey has no drop:\n%s", text)
	}
}
