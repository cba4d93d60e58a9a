package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/vishvananda/netlink"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// tcTraffic sends n pings from the host end and n UDP datagrams each way,
// plus one datagram of 8000 bytes (paged data) from the host end.
func tcTraffic(t *testing.T, p *testutils.VethPair, n int) {
	t.Helper()
	xdpPing(t, p.HostNS, p.HostIP, p.PeerIP, n)
	hostC := testutils.ListenUDP(t, p.HostNS, p.HostIP, 0)
	peerC := testutils.ListenUDP(t, p.PeerNS, p.PeerIP, 4500)
	for i := 0; i < n; i++ {
		if _, err := hostC.WriteToUDP([]byte("to peer"), &net.UDPAddr{IP: p.PeerIP, Port: 4500}); err != nil {
			t.Fatal(err)
		}
		if _, err := peerC.WriteToUDP([]byte("to host"), hostC.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := hostC.WriteToUDP(make([]byte, 8000), &net.UDPAddr{IP: p.PeerIP, Port: 4500}); err != nil {
		t.Fatal(err)
	}
	// Everything arrived (and so went through tc both ways).
	if got := testutils.CountDatagrams(peerC, 5*time.Second, 300*time.Millisecond); got != n+1 {
		t.Fatalf("peer got %d datagrams, want %d", got, n+1)
	}
	if got := testutils.CountDatagrams(hostC, 5*time.Second, 300*time.Millisecond); got != n {
		t.Fatalf("host got %d datagrams, want %d", got, n)
	}
}

// setJumboMTU lets the 8000-byte datagram through unfragmented.
func setJumboMTU(t *testing.T, p *testutils.VethPair) {
	t.Helper()
	for _, c := range [][2]string{{p.HostNSName, p.HostName}, {p.PeerNSName, p.PeerName}} {
		if out, err := testutils.Exec(c[0], "ip", "link", "set", c[1], "mtu", "9000"); err != nil {
			t.Fatal(out, err)
		}
	}
}

// tcLeftovers lists what is attached at tc on the host end: TCX programs
// and a clsact qdisc.
func tcLeftovers(t *testing.T, p *testutils.VethPair) []string {
	t.Helper()
	var left []string
	err := testutils.Do(t, p.HostNS, func() error {
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: p.HostIndex, Attach: at})
			if err != nil {
				continue // no TCX in this kernel
			}
			for _, prog := range res.Programs {
				left = append(left, fmt.Sprintf("tcx %s program %d", at, prog.ID))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(p.HostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(p.HostIndex)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			left = append(left, "clsact qdisc")
		}
	}
	return left
}

// tcFrames decodes captured packets into sorted "dir proto sport->dport
// len" strings.
func tcFrames(t *testing.T, pkts []*pcapng.Packet, ifs []pcapng.Interface) []string {
	t.Helper()
	var out []string
	for _, pk := range pkts {
		pkt := gopacket.NewPacket(pk.Data, layers.LayerTypeEthernet, gopacket.Default)
		dir := pk.Direction.String()
		hook := ifs[pk.Interface].Name
		if (dir == "in") != strings.HasSuffix(hook, ":ingress") {
			t.Errorf("packet with direction %q on interface %s", dir, hook)
		}
		if len(pk.Data) != pk.WireLen {
			t.Errorf("captured %d of %d bytes", len(pk.Data), pk.WireLen)
		}
		switch {
		case pkt.Layer(layers.LayerTypeICMPv4) != nil:
			icmp := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			out = append(out, fmt.Sprintf("%s icmp %d", dir, icmp.TypeCode.Type()))
		case pkt.Layer(layers.LayerTypeUDP) != nil:
			udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			out = append(out, fmt.Sprintf("%s udp %d", dir, len(udp.Payload)))
		default:
			t.Errorf("captured a packet that is neither ICMP nor UDP: %v", pkt)
		}
	}
	sort.Strings(out)
	return out
}

// TestTCCLIDirections: `bpfcap tc dev IF both 'icmp or udp'` captures both
// directions with the right direction and full paged datagrams, with TCX
// (auto) and with clsact (forced, what 6.1 kernels use), and leaves
// nothing attached.
func TestTCCLIDirections(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, mode := range []string{"auto", "clsact"} {
		t.Run(mode, func(t *testing.T) {
			p := testutils.NewVethPair(t)
			setJumboMTU(t, p)
			out := filepath.Join(t.TempDir(), "tc.pcapng")
			r := xdpStart(t, &p.HostNS, "tc", "dev", p.HostName, "both", "--tc-mode", mode, "icmp or udp", "-w", out)
			r.waitFile(t, out)
			if left := tcLeftovers(t, p); len(left) == 0 {
				t.Fatal("nothing attached while capturing")
			} else if mode == "clsact" && (len(left) != 1 || left[0] != "clsact qdisc") {
				t.Fatalf("clsact mode attached %v", left)
			}
			const n = 3
			tcTraffic(t, p, n)
			if err := r.stop(t); err != nil {
				t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
			}
			pkts, ifs := xdpReadPcapng(t, out)
			if len(ifs) != 2 || ifs[0].Name != "tc:"+p.HostName+":ingress" || ifs[1].Name != "tc:"+p.HostName+":egress" {
				t.Fatalf("interfaces = %+v", ifs)
			}
			var want []string
			for i := 0; i < n; i++ {
				want = append(want, "out icmp 8", "in icmp 0", "out udp 7", "in udp 7")
			}
			want = append(want, "out udp 8000")
			sort.Strings(want)
			if got := tcFrames(t, pkts, ifs); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("captured %v, want %v", got, want)
			}
			if left := tcLeftovers(t, p); len(left) != 0 {
				t.Fatalf("left attached after exit: %v", left)
			}
		})
	}
}

// TestTCCLIBadInput: clear messages, exit status 2, nothing attached.
func TestTCCLIBadInput(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no interface", []string{"tc", "dev", "bpfcapnosuch0"}, `interface "bpfcapnosuch0" does not exist`},
		{"no dev", []string{"tc", p.HostName}, "tc needs an interface: bpfcap tc dev IFNAME"},
		{"bad filter", []string{"tc", "dev", p.HostName, "ingress", "--tc-mode", "clsact", "udp", "port"}, "syntax error"},
		{"bad mode", []string{"tc", "dev", p.HostName, "--tc-mode", "ebpf"}, `unknown tc mode "ebpf"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			errc := make(chan error, 1)
			r := xdpStart(t, &p.HostNS, c.args...)
			go func() { errc <- r.stop(t) }()
			err := <-errc
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("bpfcap %s: %v, want an error saying %q", strings.Join(c.args, " "), err, c.want)
			}
			var msg bytes.Buffer
			if code := exitCode(err, &msg); code != 2 {
				t.Fatalf("exit status %d, want 2", code)
			}
			t.Logf("%s", strings.TrimSpace(msg.String()))
			if left := tcLeftovers(t, p); len(left) != 0 {
				t.Fatalf("left attached: %v", left)
			}
		})
	}
}

// TestTCHostTcpdumpCompare: bpfcap tc and tcpdump on the same veth with the
// same filter see the same packets (compared as sets of frames), in both
// attach modes.
func TestTCHostTcpdumpCompare(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("tcpdump is needed on the host: %v", err)
	}
	for _, mode := range []string{"tcx", "clsact"} {
		t.Run(mode, func(t *testing.T) {
			p := testutils.NewVethPair(t)
			setJumboMTU(t, p)
			dir := t.TempDir()
			os.Chmod(dir, 0o777) // tcpdump may drop to its own user
			ours := filepath.Join(dir, "bpfcap.pcapng")
			theirs := filepath.Join(dir, "tcpdump.pcap")
			const filter = "icmp or udp"
			td := exec.Command("ip", "netns", "exec", p.HostNSName, "tcpdump", "-Z", "root", "-U", "--immediate-mode", "-n", "-s", "0", "-i", p.HostName, "-w", theirs, filter)
			var tdErr bytes.Buffer
			td.Stderr = &tdErr
			if err := td.Start(); err != nil {
				t.Fatal(err)
			}
			defer td.Process.Kill()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(tdErr.String(), "listening on") {
				if time.Now().After(deadline) {
					t.Fatalf("tcpdump did not start: %s", tdErr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			r := xdpStart(t, &p.HostNS, "tc", "dev", p.HostName, "both", "--tc-mode", mode, filter, "-w", ours)
			r.waitFile(t, ours)
			tcTraffic(t, p, 5)
			if err := r.stop(t); err != nil {
				t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
			}
			// tcpdump writes each packet at once (-U, --immediate-mode):
			// wait until it has written all it will see, then stop it.
			deadline = time.Now().Add(10 * time.Second)
			for len(tcPcapFrames(t, theirs)) < len(tcPcapngFrames(t, ours)) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // a late extra packet would show as a difference
			td.Process.Signal(syscall.SIGINT)
			td.Wait()

			got := tcPcapngFrames(t, ours)
			want := tcPcapFrames(t, theirs)
			sort.Strings(got)
			sort.Strings(want)
			if len(want) < 5*4+1 {
				t.Fatalf("tcpdump saw only %d packets: %s", len(want), tdErr.String())
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("bpfcap saw %d packets, tcpdump %d; the sets differ", len(got), len(want))
			}
			t.Logf("bpfcap and tcpdump both saw the same %d packets", len(got))
		})
	}
}

// tcPcapngFrames returns the frames of a pcapng file as hex strings.
func tcPcapngFrames(t *testing.T, path string) []string {
	t.Helper()
	ps, _ := xdpReadPcapng(t, path)
	var out []string
	for _, pk := range ps {
		out = append(out, hex.EncodeToString(pk.Data))
	}
	return out
}

// tcPcapFrames returns the frames of a (possibly still growing) pcap file as
// hex strings.
func tcPcapFrames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		return nil
	}
	var out []string
	for {
		data, _, err := rd.ReadPacketData()
		if err != nil {
			return out
		}
		out = append(out, hex.EncodeToString(data))
	}
}

// TestTCCLIEgressSnaplen: one direction only, the perf transport and a
// snap length: the 8000-byte datagram is cut to 100 bytes of 8042.
func TestTCCLIEgressSnaplen(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	setJumboMTU(t, p)
	out := filepath.Join(t.TempDir(), "egress.pcapng")
	r := xdpStart(t, &p.HostNS, "tc", "dev", p.HostName, "egress", "--tc-mode", "clsact", "--perf", "-s", "100", "udp", "-w", out)
	r.waitFile(t, out)
	tcTraffic(t, p, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	pkts, ifs := xdpReadPcapng(t, out)
	if len(ifs) != 1 || ifs[0].Name != "tc:"+p.HostName+":egress" {
		t.Fatalf("interfaces = %+v", ifs)
	}
	var lens []string
	for _, pk := range pkts {
		if pk.Direction != pcapng.DirectionOutbound {
			t.Errorf("egress packet with direction %q", pk.Direction)
		}
		lens = append(lens, fmt.Sprintf("%d/%d", len(pk.Data), pk.WireLen))
	}
	sort.Strings(lens)
	if want := "[100/8042 49/49 49/49]"; fmt.Sprint(lens) != want {
		t.Fatalf("captured/wire lengths %v, want %s", lens, want)
	}
	if left := tcLeftovers(t, p); len(left) != 0 {
		t.Fatalf("left attached after exit: %v", left)
	}
}
