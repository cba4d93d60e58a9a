package tccap_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/tccap"
)

// testRing keeps the ring at capture.h's declared size.
var testRing = hook.RingOptions{Size: 4 << 20}

// sendUDP sends one datagram of size bytes from the namespace ns.
func sendUDP(t *testing.T, ns func(func() error) error, from, to net.IP, dport, size int) {
	t.Helper()
	err := ns(func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: from}, &net.UDPAddr{IP: to, Port: dport})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(make([]byte, size))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// clsactPresent reports whether the host end has a clsact qdisc.
func clsactPresent(t *testing.T, p *testutils.VethPair) bool {
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
			return true
		}
	}
	return false
}

// TestCaptureDirections captures UDP both ways through the host end in
// each attach mode: every packet is seen once with the right direction,
// large datagrams (paged data) in full, and nothing stays attached.
func TestCaptureDirections(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, mode := range []tccap.Mode{tccap.ModeTCX, tccap.ModeClsact, tccap.ModeAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			p := testutils.NewVethPair(t)
			hostNS := func(fn func() error) error { return testutils.Do(t, p.HostNS, fn) }
			peerNS := func(fn func() error) error { return testutils.Do(t, p.PeerNS, fn) }
			for _, ns := range []string{p.HostNSName, p.PeerNSName} {
				name := p.HostName
				if ns == p.PeerNSName {
					name = p.PeerName
				}
				if out, err := testutils.Exec(ns, "ip", "link", "set", name, "mtu", "9000"); err != nil {
					t.Fatal(out, err)
				}
			}
			// Warm up ARP so that only UDP is captured.
			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4000, 1)

			var c *tccap.Capture
			err := hostNS(func() error {
				var err error
				c, err = tccap.Open(p.HostName, tccap.Options{Mode: mode, CaptureOptions: hook.CaptureOptions{Filter: "udp and not port 5353", Ring: testRing, CountSeen: true}})
				return err
			})
			if mode == tccap.ModeTCX && errors.Is(err, ebpf.ErrNotSupported) {
				// clsact and auto cover the kernel without TCX.
				kconfig.SkipOrFailFeature(t, err, "TCX", "6.6")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := tccap.ModeTCX
			if mode == tccap.ModeClsact || (mode == tccap.ModeAuto && c.Mode == tccap.ModeClsact && !haveTCX(t, p)) {
				want = tccap.ModeClsact
			}
			if c.Mode != want {
				t.Fatalf("attached with %s, want %s", c.Mode, want)
			}
			if !c.FilterInlined {
				t.Errorf("the kernel filter is not inlined into the tc programs")
			}
			if got := clsactPresent(t, p); got != (want == tccap.ModeClsact) {
				t.Fatalf("clsact qdisc present = %v in mode %s", got, c.Mode)
			}
			ifs := c.Interfaces()
			if len(ifs) != 2 || ifs[0].Name != "tc:"+p.HostName+":ingress" || ifs[1].Name != "tc:"+p.HostName+":egress" {
				t.Fatalf("interfaces = %+v", ifs)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sink := &testutils.PacketCollector{}
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, sink) }()

			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4001, 100)  // egress
			sendUDP(t, peerNS, p.PeerIP, p.HostIP, 4002, 200)  // ingress
			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4003, 8000) // egress, paged
			testutils.WaitFor(t, "3 packets", 10*time.Second, func() bool { return sink.Len() >= 3 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := map[int]string{}
			for _, pk := range sink.Packets() {
				pkt := gopacket.NewPacket(pk.Data, layers.LayerTypeEthernet, gopacket.Default)
				udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if !ok {
					t.Fatalf("captured a packet that is not UDP: %v", pkt)
				}
				if len(pk.Data) != pk.WireLen {
					t.Errorf("port %d: captured %d of %d bytes", udp.DstPort, len(pk.Data), pk.WireLen)
				}
				got[int(udp.DstPort)] += fmt.Sprintf("%s/%s/%d", pk.Direction, ifs[pk.Interface].Name[len("tc:"+p.HostName+":"):], len(udp.Payload))
			}
			wantSet := map[int]string{4001: "out/egress/100", 4002: "in/ingress/200", 4003: "out/egress/8000"}
			if fmt.Sprint(got) != fmt.Sprint(wantSet) {
				t.Fatalf("captured %v, want %v", got, wantSet)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if clsactPresent(t, p) {
				t.Fatal("clsact qdisc left behind")
			}
			// Nothing attached: a TCX query and the filter lists are empty.
			out, err := testutils.Exec(p.HostNSName, "tc", "filter", "show", "dev", p.HostName, "ingress")
			if err == nil && out != "" {
				t.Fatalf("tc filters left: %s", out)
			}
		})
	}
}

// TestOpenErrors checks the messages for a missing interface and a bad
// filter, and that nothing is left attached.
func TestOpenErrors(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	err := testutils.Do(t, p.HostNS, func() error {
		_, err := tccap.Open("bpfcap-nosuch0", tccap.Options{CaptureOptions: hook.CaptureOptions{Ring: testRing}})
		return err
	})
	if err == nil || err.Error() != `interface "bpfcap-nosuch0" does not exist (list them with `+"`ip link`)" {
		t.Fatalf("missing interface: %v", err)
	}
	err = testutils.Do(t, p.HostNS, func() error {
		_, err := tccap.Open(p.HostName, tccap.Options{Mode: tccap.ModeClsact, CaptureOptions: hook.CaptureOptions{Filter: "udp port", Ring: testRing}})
		return err
	})
	if err == nil {
		t.Fatal("bad filter accepted")
	}
	t.Logf("bad filter: %v", err)
	if clsactPresent(t, p) {
		t.Fatal("clsact qdisc left behind after a bad filter")
	}
}

// haveTCX probes TCX by attaching with ModeTCX to the pair's host end.
func haveTCX(t *testing.T, p *testutils.VethPair) bool {
	err := testutils.Do(t, p.HostNS, func() error {
		c, err := tccap.Open(p.HostName, tccap.Options{Mode: tccap.ModeTCX, Directions: []tccap.Direction{tccap.Ingress}, CaptureOptions: hook.CaptureOptions{Ring: testRing}})
		if err == nil {
			c.Close()
		}
		return err
	})
	return !errors.Is(err, ebpf.ErrNotSupported)
}

// ringWith is testRing with notices going to w.
func ringWith(w io.Writer) hook.RingOptions {
	r := testRing
	r.Notices = w
	return r
}

// TestCountSeen: the tc program counts the packets it sees only when
// asked (BPFCAP_CFG_COUNT_SEEN); otherwise the statistics say the figure
// is unknown and the description says so.
func TestCountSeen(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, count := range []bool{false, true} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			p := testutils.NewVethPair(t)
			hostNS := func(fn func() error) error { return testutils.Do(t, p.HostNS, fn) }
			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4000, 1) // warm up ARP
			var c *tccap.Capture
			err := hostNS(func() error {
				var err error
				c, err = tccap.Open(p.HostName, tccap.Options{
					CaptureOptions: hook.CaptureOptions{Filter: "udp port 4010", Ring: testRing, CountSeen: count},
					Directions:     []tccap.Direction{tccap.Egress},
				})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if desc := c.Interfaces()[0].Description; strings.Contains(desc, hook.SeenNotCountedNote) == count {
				t.Errorf("description %q with count seen %v", desc, count)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sink := &testutils.PacketCollector{}
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, sink) }()
			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4011, 10)
			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4010, 10)
			sendUDP(t, hostNS, p.HostIP, p.PeerIP, 4010, 10)
			testutils.WaitFor(t, "2 packets", 10*time.Second, func() bool { return sink.Len() >= 2 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			st := c.Stats()[0]
			if st.Captured != 2 || st.SeenCounted != count || (count && st.Seen < 3) || (!count && st.Seen != 0) {
				t.Errorf("stats %+v with count seen %v: want 2 captured and seen counted only when asked (at least 3)", st, count)
			}
		})
	}
}
