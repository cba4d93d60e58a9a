package probe

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// l4 returns the IP protocol, destination port and payload of an
// Ethernet frame carrying IPv4 TCP or UDP; ok is false otherwise.
func l4(frame []byte) (proto byte, dport int, payload []byte, ok bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return 0, 0, nil, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0xf) * 4
	proto = ip[9]
	if len(ip) < ihl+8 || (proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP) {
		return 0, 0, nil, false
	}
	dport = int(binary.BigEndian.Uint16(ip[ihl+2:]))
	if proto == unix.IPPROTO_UDP {
		payload = ip[ihl+8:]
	}
	return proto, dport, payload, true
}

// atHook reports whether p was captured at the hook point named (the
// interface name starts with it).
func atHook(p *pcapng.Packet, point string) bool {
	return strings.HasPrefix(p.Hook, point+":")
}

// commentWord returns the value of the word "key=VALUE" of p's comment.
func commentWord(p *pcapng.Packet, key string) string {
	for _, w := range strings.Fields(p.Comment) {
		if v, ok := strings.CutPrefix(w, key+"="); ok {
			return v
		}
	}
	return ""
}

// synTo sends a TCP SYN from p's host end to port on its peer end and
// waits briefly for the connection to fail or succeed.
func synTo(t *testing.T, p *testutils.VethPair, port int) {
	t.Helper()
	testutils.Do(t, p.HostNS, func() error {
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", p.PeerIP, port), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return nil
	})
}

// TestTrackHostDNAT: a DNAT rule in the peer's netns rewrites TCP port
// 9999 to 8080 between tp_btf:netif_receive_skb and tp_btf:kfree_skb
// (nothing listens on 8080, so TCP drops the SYN). With the filter
// 'tcp port 9999', Track captures the rewritten SYN at kfree_skb with the
// id it had at netif_receive_skb; without Track the filter loses it.
// Needs iptables (host only).
func TestTrackHostDNAT(t *testing.T) {
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("host test needs iptables: %v", err)
	}
	p := testutils.NewVethPair(t)
	if out, err := testutils.Exec(p.PeerNSName, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9999", "-j", "DNAT", "--to-destination", p.PeerIP.String()+":8080"); err != nil {
		t.Fatalf("iptables DNAT: %v\n%s", err, out)
	}
	synAt := func(sink *collectSink, point string, port int) []pcapng.Packet {
		return sink.find(func(pk *pcapng.Packet) bool {
			proto, dport, _, ok := l4(pk.Data)
			return ok && proto == unix.IPPROTO_TCP && dport == port && atHook(pk, point)
		})
	}
	for _, track := range []bool{true, false} {
		t.Run(fmt.Sprintf("track=%v", track), func(t *testing.T) {
			_, sink, stop := runCapture(t, Options{
				Hooks:          []string{"tp_btf:netif_receive_skb", "tp_btf:kfree_skb"},
				CaptureOptions: hook.CaptureOptions{Filter: "tcp port 9999"},
				Track:          track,
			})
			waitFor(t, "the SYN to 9999 at netif_receive_skb", func() { synTo(t, p, 9999) },
				func() bool { return len(synAt(sink, "tp_btf:netif_receive_skb", 9999)) > 0 })
			if track {
				waitFor(t, "the rewritten SYN (8080) at kfree_skb", func() { synTo(t, p, 9999) },
					func() bool { return len(synAt(sink, "tp_btf:kfree_skb", 8080)) > 0 })
			} else {
				// Further SYNs give the rewritten one every chance to appear.
				for range 5 {
					synTo(t, p, 9999)
				}
			}
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			before := synAt(sink, "tp_btf:netif_receive_skb", 9999)
			after := synAt(sink, "tp_btf:kfree_skb", 8080)
			if !track {
				if len(after) > 0 {
					t.Errorf("without tracking, %d SYNs to 8080 passed the filter 'tcp port 9999'", len(after))
				}
				return
			}
			ids := map[uint64]bool{}
			for _, pk := range before {
				ids[pk.PacketID] = true
			}
			for _, pk := range after {
				if pk.Flags&pcapng.HasPacketID == 0 || !ids[pk.PacketID] {
					t.Errorf("SYN to 8080 at kfree_skb has id %#x, none of the ids at netif_receive_skb (%v)", pk.PacketID, ids)
				}
				if pk.DropReason == "" && HaveDropReasons(newTestResolver(t).Kernel()) == nil {
					t.Errorf("SYN to 8080 at kfree_skb has no drop reason")
				}
			}
		})
	}
}

// TestTrackAfterEmpty: tracking skips its lookups and deletes while
// bpfcap_track_count says nothing is tracked, so it must pick up again
// each time the count goes from 0 to 1. Three rounds, each a UDP datagram
// that a DNAT rule in the peer's netns rewrites from port 9998 to 8081
// (closed: the datagram is dropped at kfree_skb): the filter matches it
// only at netif_receive_skb, so its capture at kfree_skb, with the same
// id, is tracking's doing; after each round the count is back at 0.
// Needs iptables (host only).
func TestTrackAfterEmpty(t *testing.T) {
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("host test needs iptables: %v", err)
	}
	p := testutils.NewVethPair(t)
	const port, natPort = 9998, 8081
	if out, err := testutils.Exec(p.PeerNSName, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "udp", "--dport", fmt.Sprint(port), "-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", p.PeerIP, natPort)); err != nil {
		t.Fatalf("iptables DNAT: %v\n%s", err, out)
	}
	src, sink, stop := runCapture(t, Options{
		Hooks:          []string{"tp_btf:netif_receive_skb", "tp_btf:kfree_skb"},
		CaptureOptions: hook.CaptureOptions{Filter: fmt.Sprintf("udp dst port %d", port)},
		Track:          true,
	})
	bound := func() int64 {
		n, err := src.tracking.trackedBound()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := bound(); n != 0 {
		t.Fatalf("tracked-entry count %d before any packet", n)
	}
	// datagrams returns the datagrams of round r to dport at point.
	datagrams := func(r byte, point string, dport int) []pcapng.Packet {
		return sink.find(func(pk *pcapng.Packet) bool {
			proto, d, pl, ok := l4(pk.Data)
			return ok && proto == unix.IPPROTO_UDP && d == dport && len(pl) == 1 && pl[0] == r && atHook(pk, point)
		})
	}
	for r := byte(1); r <= 3; r++ {
		send := func() {
			err := testutils.Do(t, p.HostNS, func() error {
				c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: p.PeerIP, Port: port})
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte{r})
				return err
			})
			if err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		waitFor(t, fmt.Sprintf("round %d's datagram, rewritten to %d, at kfree_skb", r, natPort), send,
			func() bool { return len(datagrams(r, "tp_btf:kfree_skb", natPort)) > 0 })
		ids := map[uint64]bool{}
		for _, pk := range datagrams(r, "tp_btf:netif_receive_skb", port) {
			ids[pk.PacketID] = true
		}
		for _, pk := range datagrams(r, "tp_btf:kfree_skb", natPort) {
			if pk.Flags&pcapng.HasPacketID == 0 || !ids[pk.PacketID] {
				t.Errorf("round %d: datagram to %d at kfree_skb has id %#x, none of the ids at netif_receive_skb (%v)", r, natPort, pk.PacketID, ids)
			}
		}
		waitFor(t, fmt.Sprintf("the tracked-entry count back at 0 after round %d (it is %d)", r, bound()), func() {},
			func() bool { return bound() == 0 })
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestTrackIDsUnique floods UDP datagrams numbered in their payload
// through a veth pair to a closed port and captures them at
// netif_receive_skb and kfree_skb: with Track no id is given to two
// datagrams, and each datagram keeps one id at both hooks. Without
// Track (the skb address) ids are reused, which shows the check bites.
func TestTrackIDsUnique(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	const port = 7777
	// send sends datagrams numbered from *next on, n of them or for 30 s.
	send := func(t *testing.T, next *uint64, n int) {
		err := testutils.Do(t, p.HostNS, func() error {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: p.HostIP})
			if err != nil {
				return err
			}
			defer c.Close()
			to := &net.UDPAddr{IP: p.PeerIP, Port: port}
			buf := make([]byte, 8)
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; i < n && time.Now().Before(deadline); i++ {
				binary.BigEndian.PutUint64(buf, *next)
				if _, err := c.WriteToUDP(buf, to); err != nil {
					return err
				}
				*next++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
	}
	run := func(t *testing.T, track bool, n int) (seqsOfID map[uint64]map[uint64]bool, idsOfSeq map[uint64]map[uint64]bool, sent int) {
		_, sink, stop := runCapture(t, Options{
			Hooks: []string{"tp_btf:netif_receive_skb", "tp_btf:kfree_skb"},
			CaptureOptions: hook.CaptureOptions{
				Filter:  fmt.Sprintf("udp dst port %d", port),
				Ring:    hook.RingOptions{Size: 64 << 20},
				Snaplen: 64,
			},
			Track: track,
		})
		var next uint64
		send(t, &next, n)
		sent = int(next)
		// A datagram sent after the flood and captured: the flood's
		// datagrams were all delivered or lost by then, none pending.
		after := func(pk *pcapng.Packet) bool {
			_, _, pl, ok := l4(pk.Data)
			return ok && len(pl) >= 8 && binary.BigEndian.Uint64(pl) >= uint64(sent)
		}
		waitFor(t, "a datagram after the flood", func() { send(t, &next, 1) }, func() bool { return len(sink.find(after)) > 0 })
		if err := stop(); err != nil {
			t.Fatalf("run: %v", err)
		}
		seqsOfID, idsOfSeq = map[uint64]map[uint64]bool{}, map[uint64]map[uint64]bool{}
		add := func(m map[uint64]map[uint64]bool, k, v uint64) {
			if m[k] == nil {
				m[k] = map[uint64]bool{}
			}
			m[k][v] = true
		}
		for _, pk := range sink.find(func(*pcapng.Packet) bool { return true }) {
			_, dport, pl, ok := l4(pk.Data)
			if !ok || dport != port || len(pl) < 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(pl)
			add(seqsOfID, pk.PacketID, seq)
			add(idsOfSeq, seq, pk.PacketID)
		}
		return seqsOfID, idsOfSeq, sent
	}

	t.Run("track", func(t *testing.T) {
		seqsOfID, idsOfSeq, sent := run(t, true, 100000)
		reused := 0
		for id, seqs := range seqsOfID {
			if len(seqs) > 1 {
				if reused < 5 {
					t.Errorf("id %#x given to %d datagrams", id, len(seqs))
				}
				reused++
			}
		}
		split := 0
		for seq, ids := range idsOfSeq {
			if len(ids) > 1 {
				if split < 5 {
					t.Errorf("datagram %d has %d ids", seq, len(ids))
				}
				split++
			}
		}
		t.Logf("sent %d datagrams, captured %d of them under %d ids; %d ids reused, %d datagrams with several ids", sent, len(idsOfSeq), len(seqsOfID), reused, split)
		if len(idsOfSeq) < sent/2 {
			t.Errorf("captured only %d of %d datagrams: too few to judge", len(idsOfSeq), sent)
		}
	})
	t.Run("address", func(t *testing.T) {
		seqsOfID, idsOfSeq, sent := run(t, false, 20000)
		reused := 0
		for _, seqs := range seqsOfID {
			if len(seqs) > 1 {
				reused++
			}
		}
		t.Logf("without tracking: sent %d, captured %d datagrams under %d ids, %d ids reused", sent, len(idsOfSeq), len(seqsOfID), reused)
		if reused == 0 {
			t.Errorf("without tracking no skb address was reused over %d datagrams: the check above cannot tell", len(idsOfSeq))
		}
	})
}

// TestTraceDropLocationStack: a UDP datagram to a closed port is freed
// in the UDP receive path; at the kfree_skb tracepoint (BTF and classic)
// the record's comment names that code as location=SYMBOL+0xOFF, and
// with Stack its kernel stack, which passes ip_local_deliver.
func TestTraceDropLocationStack(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	const port = 6544
	for _, hk := range []string{"tp_btf:kfree_skb", "tracepoint:skb:kfree_skb"} {
		t.Run(hk, func(t *testing.T) {
			_, sink, stop := runCapture(t, Options{
				Hooks:          []string{hk},
				CaptureOptions: hook.CaptureOptions{Filter: fmt.Sprintf("udp dst port %d", port)},
				Stack:          true,
			})
			waitFor(t, "a captured UDP drop", func() { sendUDP(t, p, p.PeerIP, port) },
				func() bool { return len(sink.find(func(*pcapng.Packet) bool { return true })) > 0 })
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			got := sink.find(func(*pcapng.Packet) bool { return true })[0]
			loc := commentWord(&got, "location")
			if !strings.Contains(loc, "udp") || !strings.Contains(loc, "+0x") {
				t.Errorf("location %q (comment %q), want a UDP receive function as SYMBOL+0xOFF", loc, got.Comment)
			}
			stack := commentWord(&got, "stack")
			if !strings.Contains(stack, "ip_local_deliver") || !strings.Contains(stack, "<-") {
				t.Errorf("stack %q, want frames through ip_local_deliver", stack)
			}
			if strings.HasPrefix(stack, "bpf_") {
				t.Errorf("stack %q starts with the probe's own frames", stack)
			}
		})
	}
}

// TestTrackHostNetfilterDropLocation: a SYN dropped by an iptables DROP
// rule is recorded at tp_btf:kfree_skb with the reason NETFILTER_DROP, a
// location in netfilter (nf_hook_slow, or nft_do_chain in newer kernels) and, with Stack, a stack through nf_hook_slow.
// Needs iptables (host only).
func TestTrackHostNetfilterDropLocation(t *testing.T) {
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("host test needs iptables: %v", err)
	}
	p := testutils.NewVethPair(t)
	if out, err := testutils.Exec(p.PeerNSName, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "6666", "-j", "DROP"); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	_, sink, stop := runCapture(t, Options{
		Hooks:          []string{"tp_btf:kfree_skb"},
		CaptureOptions: hook.CaptureOptions{Filter: "tcp dst port 6666"},
		Stack:          true,
		Track:          true,
	})
	waitFor(t, "the dropped SYN", func() { synTo(t, p, 6666) },
		func() bool { return len(sink.find(func(*pcapng.Packet) bool { return true })) > 0 })
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	got := sink.find(func(*pcapng.Packet) bool { return true })[0]
	if got.DropReason != "NETFILTER_DROP" {
		t.Errorf("reason %q, want NETFILTER_DROP", got.DropReason)
	}
	// nf_hook_slow frees what a rule dropped; nf_tables frees it itself
	// in newer kernels (6.18: nft_do_chain).
	loc := commentWord(&got, "location")
	if !strings.Contains(loc, "+0x") || !slices.ContainsFunc([]string{"nf_", "nft_", "ipt_"}, func(p string) bool { return strings.HasPrefix(loc, p) }) {
		t.Errorf("location %q (comment %q), want a netfilter function as SYMBOL+0xOFF (nf_hook_slow+0x...)", loc, got.Comment)
	}
	if stack := commentWord(&got, "stack"); !strings.Contains(stack, "nf_hook_slow") {
		t.Errorf("stack %q, want nf_hook_slow in it", stack)
	}
}

// TestTrackClones: an AF_PACKET socket in the sender's netns makes the
// kernel clone each outgoing skb for it (dev_queue_xmit_nit); with Track
// the clone, freed when the socket's queue is read, is captured with an
// id of its own and its parent's id ("parent=0x..." in the comment).
// Needs fexit on skb_clone (refused by policy on the development host).
func TestTrackClones(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	const port = 7778
	src, sink, stop := runCapture(t, Options{
		Hooks:          []string{"tp_btf:net_dev_queue", "tp_btf:consume_skb", "tp_btf:kfree_skb"},
		CaptureOptions: hook.CaptureOptions{Filter: fmt.Sprintf("udp dst port %d", port)},
		Track:          true,
	})
	kconfig.SkipOrFailFeature(t, src.CloneTrackingErr(), "fexit on skb_clone", "5.5")
	var fd int
	err := testutils.Do(t, p.HostNS, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 2048)
	clone := func(pk *pcapng.Packet) bool { return commentWord(pk, "parent") != "" }
	waitFor(t, "a captured clone", func() {
		sendUDP(t, p, p.PeerIP, port)
		for {
			if _, _, err := unix.Recvfrom(fd, buf, 0); err != nil {
				break
			}
		}
	}, func() bool { return len(sink.find(clone)) > 0 })
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	queued := map[string]uint64{}
	for _, pk := range sink.find(func(pk *pcapng.Packet) bool { return atHook(pk, "tp_btf:net_dev_queue") }) {
		queued[fmt.Sprintf("%#x", pk.PacketID)] = pk.PacketID
	}
	for _, pk := range sink.find(clone) {
		parent := commentWord(&pk, "parent")
		id, ok := queued[parent]
		if !ok {
			t.Errorf("clone %#x at %s names parent %s, not a packet seen at net_dev_queue (%v)", pk.PacketID, pk.Hook, parent, queued)
		}
		if pk.PacketID == id || pk.PacketID == 0 {
			t.Errorf("clone has id %#x, its parent %s: want an id of its own", pk.PacketID, parent)
		}
	}
}

// htons converts a short to network byte order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
