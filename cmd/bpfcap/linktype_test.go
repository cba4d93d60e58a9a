package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// unresolvedDrops makes the host end give up on a neighbour at once
// (mcast_solicit 0: no ARP probe) and returns an address of the pair's
// subnet that nobody has: a datagram sent there is dropped from the
// neighbour queue (NEIGH_FAILED) before it got a MAC header, as locally
// generated drops are.
func unresolvedDrops(t *testing.T, p *testutils.VethPair) net.IP {
	t.Helper()
	// The peer stays reachable: its address is a permanent neighbour.
	mac, err := testutils.Exec(p.PeerNSName, "cat", "/sys/class/net/"+p.PeerName+"/address")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := testutils.Exec(p.HostNSName, "ip", "neigh", "replace", p.PeerIP.String(), "lladdr", strings.TrimSpace(mac), "dev", p.HostName, "nud", "permanent"); err != nil {
		t.Fatalf("ip neigh: %v\n%s", err, out)
	}
	if out, err := testutils.Exec(p.HostNSName, "sysctl", "-qw", "net.ipv4.neigh."+p.HostName+".mcast_solicit=0"); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	return net.IPv4(p.PeerIP[0], p.PeerIP[1], p.PeerIP[2], 77).To4()
}

// TestHabitTraceOneLinkType: without proto, a trace file holds Ethernet
// only (tcpdump reads one link type per file); the run says which link
// type it chose and, at exit, how many packets lacked a MAC header and
// that proto ip shows them. With proto ip on two hooks the file holds
// Linux cooked captures only; with proto auto two link types, said so.
// Guest-safe (no tcpdump): the file is read with bpfcap's reader.
func TestHabitTraceOneLinkType(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	hole := unresolvedDrops(t, p)
	capture := func(t *testing.T, args ...string) ([]pcapng.Interface, []*pcapng.Packet, string) {
		out := filepath.Join(t.TempDir(), "x.pcapng")
		tr := startRun(t, append([]string{"trace", "-w", out}, args...)...)
		tr.waitAttached(t, out)
		// Drops happen as the datagrams are sent (no neighbour) or
		// delivered over the veth (the closed port); stop drains the ring.
		for range 25 {
			sendUDP(t, p, hole, 6601, 2)
			sendUDP(t, p, p.PeerIP, 6602, 2)
			time.Sleep(20 * time.Millisecond)
		}
		if err := tr.stop(t); err != nil {
			t.Fatalf("bpfcap %v: %v\n%s", args, err, tr.stderr)
		}
		ifaces, pkts := readPcapng(t, out)
		return ifaces, pkts, tr.stderr.String()
	}

	t.Run("default", func(t *testing.T) {
		ifaces, pkts, stderr := capture(t, "tp_btf:kfree_skb")
		for _, ifc := range ifaces {
			if ifc.LinkType != pcapng.LinkTypeEthernet {
				t.Errorf("interface %s has link type %v, want Ethernet only", ifc.Name, ifc.LinkType)
			}
		}
		if countPort(pkts, 6602) == 0 {
			t.Errorf("no drop to the closed port 6602 captured; stderr:\n%s", stderr)
		}
		if countPort(pkts, 6601) != 0 {
			t.Errorf("datagrams to an unresolved neighbour (no MAC header) captured as Ethernet")
		}
		for _, want := range []string{
			"capturing at tp_btf:kfree_skb:arg1, link-type EN10MB (Ethernet), snapshot length 65536 bytes",
			"packets had no MAC header and were not captured: proto ip shows them",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
	})
	t.Run("proto ip two hooks", func(t *testing.T) {
		ifaces, pkts, stderr := capture(t, "tp_btf:kfree_skb", "tp_btf:consume_skb", "proto", "ip", "udp")
		if len(ifaces) != 2 {
			t.Fatalf("%d interfaces, want 2", len(ifaces))
		}
		for _, ifc := range ifaces {
			if ifc.LinkType != pcapng.LinkTypeLinuxSLL || ifc.SnapLen != 65536+16 {
				t.Errorf("interface %s: link type %v snap %d, want Linux cooked, 65552", ifc.Name, ifc.LinkType, ifc.SnapLen)
			}
		}
		if countPort(pkts, 6601) == 0 {
			t.Errorf("datagrams to an unresolved neighbour not captured with proto ip; stderr:\n%s", stderr)
		}
		for _, pk := range pkts {
			if len(pk.Data) < 16+20 || pk.Data[14] != 0x08 || pk.Data[15] != 0 || pk.Data[16]>>4 != 4 {
				t.Errorf("not a cooked IPv4 packet: % x", pk.Data[:min(len(pk.Data), 36)])
			}
			if pk.WireLen != len(pk.Data) {
				t.Errorf("wire length %d, captured %d", pk.WireLen, len(pk.Data))
			}
		}
		if !strings.Contains(stderr, "link-type LINUX_SLL (Linux cooked v1)") {
			t.Errorf("stderr does not name the link type:\n%s", stderr)
		}
	})
	t.Run("proto auto", func(t *testing.T) {
		ifaces, _, stderr := capture(t, "tp_btf:kfree_skb", "proto", "auto")
		if len(ifaces) != 2 || ifaces[0].LinkType != pcapng.LinkTypeEthernet || ifaces[1].LinkType != pcapng.LinkTypeRaw {
			t.Errorf("interfaces %+v, want Ethernet and raw IP", ifaces)
		}
		if !strings.Contains(stderr, "link-types EN10MB (Ethernet) and RAW (Raw IP) (Wireshark reads this; tcpdump reads one link type per file)") {
			t.Errorf("stderr does not say the file has two link types:\n%s", stderr)
		}
	})
	t.Run("proto auto with a filter", func(t *testing.T) {
		err := run(context.Background(), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, []string{"trace", "tp_btf:kfree_skb", "proto", "auto", "udp"})
		if err == nil || !strings.Contains(err.Error(), "use proto eth or proto ip with a filter") {
			t.Errorf("err %v, want a refusal naming proto eth / proto ip", err)
		}
	})
}

// countPort counts the UDP datagrams to port in pkts, whatever header
// they start at (Ethernet, Linux cooked or raw IPv4).
func countPort(pkts []*pcapng.Packet, port int) int {
	n := 0
	for _, pk := range pkts {
		if udpPort(pk.Data) == port {
			n++
		}
	}
	return n
}

// udpPort finds an IPv4 header at offset 0, 14 or 16 and returns the UDP
// destination port, or -1.
func udpPort(b []byte) int {
	for _, off := range []int{0, 14, 16} {
		if len(b) < off+24 || b[off]>>4 != 4 || b[off+9] != 17 {
			continue
		}
		if off == 14 && (b[12] != 8 || b[13] != 0) {
			continue
		}
		if off == 16 && (b[14] != 8 || b[15] != 0) {
			continue
		}
		ihl := int(b[off]&0xf) * 4
		if len(b) < off+ihl+4 {
			continue
		}
		return int(b[off+ihl+2])<<8 | int(b[off+ihl+3])
	}
	return -1
}

// TestHabitHostTcpdumpReadsTrace is the issue's proof: `bpfcap trace
// tp_btf:kfree_skb -c 5 | tcpdump -nr -` and the multi-hook cases (two
// hooks without proto; two hooks with proto ip) are read by tcpdump.
func TestHabitHostTcpdumpReadsTrace(t *testing.T) {
	testutils.RequireRoot(t)
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("host test needs tcpdump: %v", err)
	}
	bin := testutils.BuildBinary(t)
	p := testutils.NewVethPair(t)
	hole := unresolvedDrops(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Drops the whole time: to a closed port of the peer (received, with
	// a MAC header) and to a neighbour that never resolves (no MAC header).
	traffic := make(chan struct{})
	go func() {
		defer close(traffic)
		for ctx.Err() == nil {
			sendUDPQuiet(t, p, hole, 6611)
			sendUDPQuiet(t, p, p.PeerIP, 6612)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-traffic }()
	for _, tc := range []struct {
		args, linkType string
	}{
		{"trace tp_btf:kfree_skb -c 5", "EN10MB (Ethernet)"},
		{"trace tp_btf:kfree_skb tp_btf:consume_skb -c 5", "EN10MB (Ethernet)"},
		{"trace tp_btf:kfree_skb tp_btf:consume_skb proto ip -c 5", "LINUX_SLL (Linux cooked v1)"},
		{"trace tp_btf:kfree_skb tp_btf:consume_skb proto ip -c 5 udp", "LINUX_SLL (Linux cooked v1)"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, "sh", "-c", bin+" "+tc.args+" 2>"+filepath.Join(t.TempDir(), "err")+" | tcpdump -nr -")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("pipeline: %v\n%s", err, stderr.String())
			}
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) < 5 {
				t.Errorf("tcpdump printed %d lines, want 5 or more:\n%s", len(lines), out)
			}
			if want := "reading from file -, link-type " + tc.linkType; !strings.Contains(stderr.String(), want) {
				t.Errorf("tcpdump's stderr lacks %q:\n%s", want, stderr.String())
			}
		})
	}
	// -l: lines, not pcapng, into a pipe (tcpdump -l's spirit).
	t.Run("-l into grep", func(t *testing.T) {
		cmd := exec.CommandContext(ctx, "sh", "-c", bin+" trace tp_btf:kfree_skb -l -c 3 'udp port 6612' 2>/dev/null | grep -c 'NO_SOCKET'")
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != "3" {
			t.Errorf("grep counted %q lines with NO_SOCKET (%v), want 3", out, err)
		}
	})
}

// sendUDPQuiet sends one datagram from the host end's namespace and
// ignores errors (for traffic loops outside the test goroutine).
func sendUDPQuiet(t *testing.T, p *testutils.VethPair, dst net.IP, port int) {
	_ = testutils.Do(t, p.HostNS, func() error {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteToUDP([]byte("bpfcap"), &net.UDPAddr{IP: dst, Port: port})
		return err
	})
}
