package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// Tests named TestXDPHost* and TestTCHost* need tools only the host has
// (tshark, tcpdump, a Go toolchain); the other TestXDP*/TestTC* tests run
// in minimal VM guests too.

// xdpRun is `bpfcap ARGS...` running in-process, optionally on a thread
// inside a network namespace.
type xdpRun struct {
	cancel context.CancelFunc
	done   chan error
	stderr *testutils.SyncBuffer
	once   sync.Once
	err    error
}

// xdpStart runs bpfcap with args in ns (nil: the test's own netns).
func xdpStart(t *testing.T, ns *netns.NsHandle, args ...string) *xdpRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &xdpRun{cancel: cancel, done: make(chan error, 1), stderr: &testutils.SyncBuffer{}}
	go func() {
		if ns != nil {
			// The thread stays in ns and dies with this goroutine.
			runtime.LockOSThread()
			if err := netns.Set(*ns); err != nil {
				r.done <- fmt.Errorf("enter netns: %w", err)
				return
			}
		}
		r.done <- run(ctx, strings.NewReader(""), io.Discard, r.stderr, args)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the run and returns its error.
func (r *xdpRun) stop(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(15 * time.Second):
			t.Fatalf("bpfcap did not stop within 15 s; stderr:\n%s", r.stderr)
		}
	})
	return r.err
}

// waitFile waits until path exists (created once the capture is attached)
// or the run ended.
func (r *xdpRun) waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-r.done:
			r.once.Do(func() { r.err = err })
			t.Fatalf("bpfcap ended before attaching: %v\nstderr:\n%s", err, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bpfcap did not attach within 15 s; stderr:\n%s", r.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runOnce runs bpfcap to completion and returns its error and stderr.
func runOnce(args ...string) (error, string) {
	var stderr bytes.Buffer
	err := run(context.Background(), strings.NewReader(""), io.Discard, &stderr, args)
	return err, stderr.String()
}

// xdpReadPcapng reads every packet of a pcapng file.
func xdpReadPcapng(t *testing.T, path string) ([]*pcapng.Packet, []pcapng.Interface) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapng.NewReader(f)
	if err != nil {
		t.Fatal(err)
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
		p.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, p)
	}
	return pkts, rd.Interfaces()
}

var xdpPinCounter atomic.Uint32

func xdpPinPath(t *testing.T) string {
	p := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bpfcap-clitest-%d-%d", os.Getpid(), xdpPinCounter.Add(1)))
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// xdpSetup is the example firewall on the peer end of a veth pair with its
// hook pinned, and a pass-through XDP program on the host end (veth hands
// XDP_TX frames only to an XDP-enabled peer).
type xdpSetup struct {
	*testutils.VethPair
	pin string
	fw  *firewall.Firewall
}

func newXDPSetup(t *testing.T, opts firewall.Options) *xdpSetup {
	t.Helper()
	p := testutils.NewVethPair(t)
	pin := xdpPinPath(t)
	hook, err := xdpcap.CreatePinned(pin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hook.Close() })
	opts.Hook = hook
	fw, err := firewall.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	for port, a := range map[uint16]xdpcap.Action{9: xdpcap.Drop, 7: xdpcap.TX, 53: xdpcap.Pass} {
		if err := fw.SetRule(port, a); err != nil {
			t.Fatal(err)
		}
	}
	attach := func(ns netns.NsHandle, ifindex int, prog *ebpf.Program) {
		err := testutils.Do(t, ns, func() error {
			l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex})
			if err != nil {
				return err
			}
			t.Cleanup(func() { l.Close() })
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	attach(p.PeerNS, p.PeerIndex, fw.Program)
	pass, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "pass", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, int32(xdpcap.Pass)), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pass.Close() })
	attach(p.HostNS, p.HostIndex, pass)
	return &xdpSetup{VethPair: p, pin: pin, fw: fw}
}

// dnsTraffic sends, through the firewall: n datagrams each to port 9
// (dropped) and 2000 (passed) that are not DNS, then n DNS queries each to
// port 53 (passed), from port 53 to port 9 (dropped) and from port 53 to
// port 7 (bounced). It checks that the firewall did what it does, and
// returns the flows a capture of 'udp port 53' must see, as
// "sport->dport:verdict" with ephemeral ports as 0.
func dnsTraffic(t *testing.T, s *xdpSetup, n int) []string {
	t.Helper()
	dnsSrv := testutils.ListenUDP(t, s.PeerNS, s.PeerIP, 53)
	discard := testutils.ListenUDP(t, s.PeerNS, s.PeerIP, 9)
	other := testutils.ListenUDP(t, s.PeerNS, s.PeerIP, 2000)
	client := testutils.ListenUDP(t, s.HostNS, s.HostIP, 0)
	dns53 := testutils.ListenUDP(t, s.HostNS, s.HostIP, 53)
	send := func(c *net.UDPConn, port int, payload []byte) {
		if _, err := c.WriteToUDP(payload, &net.UDPAddr{IP: s.PeerIP, Port: port}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		send(client, 9, []byte("not dns"))
		send(client, 2000, []byte("not dns"))
	}
	var want []string
	for i := 0; i < n; i++ {
		send(client, 53, testutils.DNSQuery(uint16(i)))
		send(dns53, 9, testutils.DNSQuery(uint16(i)))
		send(dns53, 7, testutils.DNSQuery(uint16(i)))
		want = append(want, "0->53:2", "53->9:1", "7->53:3")
	}
	for _, c := range []struct {
		name string
		conn *net.UDPConn
		want int
	}{{"DNS server (passed)", dnsSrv, n}, {"port 2000 (passed)", other, n}, {"port 9 (dropped)", discard, 0}, {"host port 53 (bounced)", dns53, n}} {
		first := 300 * time.Millisecond
		if c.want > 0 {
			first = 5 * time.Second
		}
		if got := testutils.CountDatagrams(c.conn, first, 300*time.Millisecond); got != c.want {
			t.Errorf("%s received %d datagrams, want %d: the firewall's behaviour changed", c.name, got, c.want)
		}
	}
	sort.Strings(want)
	return want
}

// flows turns captured packets into sorted "sport->dport:verdict" strings.
func flows(t *testing.T, pkts []*pcapng.Packet) []string {
	t.Helper()
	var out []string
	for _, p := range pkts {
		pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("captured a packet that is not UDP: %v", pkt)
		}
		if p.VerdictType != pcapng.VerdictXDP {
			t.Fatalf("packet without an XDP verdict: %+v", p)
		}
		// The verdict is epb_verdict, which readers name; the comment
		// does not repeat it.
		name := xdpcap.Action(p.Verdict).KernelName()
		if got := pcapng.VerdictName(p.VerdictType, p.Verdict); got != name || strings.Contains(p.Comment, name) {
			t.Errorf("verdict read as %s, comment %q; want %s, and not in the comment", got, p.Comment, name)
		}
		sp, dp := int(udp.SrcPort), int(udp.DstPort)
		if sp >= 1024 {
			sp = 0
		}
		if dp >= 1024 {
			dp = 0
		}
		out = append(out, fmt.Sprintf("%d->%d:%d", sp, dp, p.Verdict))
	}
	sort.Strings(out)
	return out
}

func assertHookEmpty(t *testing.T, pin string) {
	t.Helper()
	h, err := xdpcap.OpenHook(pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if occ, err := h.Occupants(); err != nil || len(occ) != 0 {
		t.Fatalf("hook %s not empty: %+v, %v", pin, occ, err)
	}
}

// warmUp resolves ARP between the ends so captures see only UDP.
func warmUp(t *testing.T, s *xdpSetup) {
	t.Helper()
	xdpPing(t, s.HostNS, s.HostIP, s.PeerIP, 1)
}

// TestXDPCLIHookDNS: `bpfcap xdp PIN 'udp port 53' -w FILE` on the example
// firewall (both hook layouts) captures exactly the DNS packets, each with
// its verdict, the firewall behaves as without capture, and the hook is
// empty afterwards.
func TestXDPCLIHookDNS(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, tc := range []struct {
		name string
		opts firewall.Options
	}{
		{"bpfcap-layout", firewall.Options{}},
		{"cloudflare-layout", firewall.Options{Layout: firewall.LayoutCloudflare}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newXDPSetup(t, tc.opts)
			warmUp(t, s)
			out := filepath.Join(t.TempDir(), "dns.pcapng")
			r := xdpStart(t, nil, "xdp", s.pin, "udp port 53", "-w", out)
			r.waitFile(t, out)
			want := dnsTraffic(t, s, 3)
			if err := r.stop(t); err != nil {
				t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
			}
			pkts, ifs := xdpReadPcapng(t, out)
			if len(ifs) != 1 || ifs[0].Name != "xdp:"+s.pin || ifs[0].Filter != "udp port 53" {
				t.Fatalf("interfaces = %+v", ifs)
			}
			if got := flows(t, pkts); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("captured %v, want %v", got, want)
			}
			if !strings.Contains(r.stderr.String(), "captured 9") {
				t.Errorf("stats on stderr do not say captured 9:\n%s", r.stderr)
			}
			assertHookEmpty(t, s.pin)
		})
	}
}

// TestXDPCLIActions: --actions drop captures only dropped packets and
// fills only the drop slot.
func TestXDPCLIActions(t *testing.T) {
	testutils.RunsInGuests(t)
	s := newXDPSetup(t, firewall.Options{})
	warmUp(t, s)
	out := filepath.Join(t.TempDir(), "drop.pcapng")
	r := xdpStart(t, nil, "xdp", s.pin, "--actions", "drop", "udp", "-w", out)
	r.waitFile(t, out)
	h, err := xdpcap.OpenHook(s.pin)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	occ, err := h.Occupants()
	if err != nil || len(occ) != 1 || occ[0].Action != xdpcap.Drop {
		t.Fatalf("hook during --actions drop: %+v, %v", occ, err)
	}
	dnsTraffic(t, s, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	pkts, _ := xdpReadPcapng(t, out)
	got := flows(t, pkts)
	want := []string{"0->9:1", "0->9:1", "53->9:1", "53->9:1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("captured %v, want %v", got, want)
	}
	assertHookEmpty(t, s.pin)
}

// TestXDPCLIBadInput: a pin that is not a prog array, a prog array of the
// wrong size, a pinned program, an interface that does not exist, a bad
// filter and a bad action: each a clear message and exit status 2, and
// nothing left in the hook.
func TestXDPCLIBadInput(t *testing.T) {
	testutils.RunsInGuests(t)
	s := newXDPSetup(t, firewall.Options{})
	pinMap := func(spec ebpf.MapSpec) string {
		m, err := ebpf.NewMap(&spec)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		p := xdpPinPath(t)
		if err := m.Pin(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hashPin := pinMap(ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	bigPin := pinMap(ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 16})
	progPin := xdpPinPath(t)
	if err := s.fw.Program.Pin(progPin); err != nil {
		t.Fatal(err)
	}
	defer s.fw.Program.Unpin()

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"hash map", []string{"xdp", hashPin}, "it is a map of type Hash, a hook is a prog array"},
		{"wrong size", []string{"xdp", bigPin}, "prog array of 16 slots, a hook has one per XDP action: 5 (bpfcap layout) or 4 (Cloudflare xdpcap layout)"},
		{"program pin", []string{"xdp", progPin}, "is a pinned program, not a map"},
		{"no pin", []string{"xdp", "/sys/fs/bpf/bpfcap-no-such-hook"}, "no such pin"},
		{"no interface", []string{"xdp", "dev", "bpfcapnosuch0"}, `interface "bpfcapnosuch0" does not exist`},
		{"bad filter", []string{"xdp", s.pin, "udp", "port"}, "syntax error"},
		{"bad action", []string{"xdp", s.pin, "--actions", "pass,bounce"}, `unknown XDP action "bounce"`},
		{"bad proto", []string{"xdp", s.pin, "proto", "ip", "udp"}, "XDP packets start with the Ethernet header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err, _ := runOnce(c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("bpfcap %s: error %v, want one saying %q", strings.Join(c.args, " "), err, c.want)
			}
			var msg bytes.Buffer
			if code := exitCode(err, &msg); code != 2 {
				t.Fatalf("exit status %d, want 2", code)
			}
			t.Logf("%s", strings.TrimSpace(msg.String()))
			assertHookEmpty(t, s.pin)
		})
	}
}

// xdpPing sends n ICMP echo requests from ns to dst, one at a time, and
// waits for each reply (resending a lost request, as the links may still
// be settling), without needing a ping binary.
func xdpPing(t *testing.T, ns netns.NsHandle, src, dst net.IP, n int) {
	t.Helper()
	var c *icmp.PacketConn
	err := testutils.Do(t, ns, func() error {
		var err error
		c, err = icmp.ListenPacket("ip4:icmp", src.String())
		return err
	})
	if err != nil {
		t.Fatalf("icmp socket: %v", err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for seq := 1; seq <= n; seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: seq, Data: []byte("bpfcap")}}
		wire, err := msg.Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		replied := false
		for try := 0; try < 5 && !replied; try++ {
			if _, err := c.WriteTo(wire, &net.IPAddr{IP: dst}); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			for {
				k, _, err := c.ReadFrom(buf)
				if err != nil {
					break
				}
				m, err := icmp.ParseMessage(1, buf[:k])
				if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
					continue
				}
				if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq {
					replied = true
					break
				}
			}
		}
		if !replied {
			t.Fatalf("no echo reply from %s for request %d", dst, seq)
		}
	}
}

// TestXDPCLIPerfSnaplen: the perf buffer transport and a snap length
// (bpftool's `len` keyword) work for hook captures: every DNS packet is
// cut to 60 bytes and keeps its wire length and verdict.
func TestXDPCLIPerfSnaplen(t *testing.T) {
	testutils.RunsInGuests(t)
	s := newXDPSetup(t, firewall.Options{})
	warmUp(t, s)
	out := filepath.Join(t.TempDir(), "perf.pcapng")
	r := xdpStart(t, nil, "xdp", s.pin, "--perf", "len", "60", "udp port 53", "-w", out)
	r.waitFile(t, out)
	dnsTraffic(t, s, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("bpfcap: %v\n%s", err, r.stderr)
	}
	pkts, ifs := xdpReadPcapng(t, out)
	if len(ifs) != 1 || ifs[0].SnapLen != 60 {
		t.Fatalf("interfaces = %+v, want snap length 60", ifs)
	}
	if len(pkts) != 6 {
		t.Fatalf("captured %d packets, want 6", len(pkts))
	}
	for _, p := range pkts {
		if len(p.Data) != 60 || p.WireLen <= 60 || p.VerdictType != pcapng.VerdictXDP {
			t.Fatalf("packet of %d bytes (wire %d, verdict type %d), want 60 of more, with a verdict", len(p.Data), p.WireLen, p.VerdictType)
		}
	}
	assertHookEmpty(t, s.pin)
}
