package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// sendUDP sends one datagram from inside ns to dst:port.
func sendUDP(t *testing.T, p *testutils.VethPair, dst net.IP, port int) {
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
		_, err = c.WriteToUDP([]byte("bpfcap drop test"), to)
		return err
	})
	if err != nil {
		t.Fatalf("send UDP: %v", err)
	}
}

// udpDstPort returns the UDP destination port of a raw IPv4 packet, or -1.
func udpDstPort(b []byte) int {
	if len(b) < 28 || b[0]>>4 != 4 || b[9] != 17 {
		return -1
	}
	ihl := int(b[0]&0xf) * 4
	if len(b) < ihl+8 {
		return -1
	}
	return int(binary.BigEndian.Uint16(b[ihl+2:]))
}

// TestTraceDropNoSocket: UDP to a closed port is dropped with NO_SOCKET;
// the README's first command `kprobe:kfree_skb:arg1 proto ip` (through whatever the
// fallback chain picks on this kernel) captures it with the reason, the
// device and the true length. Needs no iptables or tshark (guest-safe).
func TestTraceDropNoSocket(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	before := testutils.CountPrograms(t, "probe_")
	p := testutils.NewVethPair(t)
	const port = 6543
	fn := "kfree_skb"
	if os.Getenv("BPFCAP_VMTEST_BROKEN_PROBE") != "" {
		fn = "bpfcap_vmtest_no_such_function"
	}
	src, sink, stop := runCapture(t, Options{
		Hooks:          []string{"kprobe:" + fn + ":arg1"},
		Proto:          "ip",
		CaptureOptions: hook.CaptureOptions{Filter: "udp dst port 6543", CountSeen: true},
	})
	if d := src.Interfaces()[0].Description; strings.Contains(d, "userspace") {
		t.Errorf("the filter does not run in the kernel: %s", d)
	}
	match := func(pk *pcapng.Packet) bool { return udpDstPort(pk.Data) == port }
	// Each round also drops a datagram the filter must reject.
	waitFor(t, "a captured UDP drop", func() { sendUDP(t, p, p.PeerIP, port); sendUDP(t, p, p.PeerIP, port+1) },
		func() bool { return len(sink.find(match)) > 0 })
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	got := sink.find(match)[0]
	reasons := HaveDropReasons(newTestResolver(t).Kernel())
	if reasons == nil && got.DropReason != "NO_SOCKET" || reasons != nil && got.DropReason != "" {
		t.Errorf("drop reason %q, want NO_SOCKET (drop reasons: %v)", got.DropReason, reasons)
	}
	if got.Device != p.PeerName {
		t.Errorf("device %q, want %s (the peer end, in its own netns)", got.Device, p.PeerName)
	}
	if got.WireLen != 20+8+len("bpfcap drop test") || len(got.Data) != got.WireLen {
		t.Errorf("wire length %d, captured %d; want %d both", got.WireLen, len(got.Data), 20+8+16)
	}
	if got.Flags&pcapng.HasPacketID == 0 || got.PacketID == 0 {
		t.Errorf("no packet id")
	}
	if got.Flags&pcapng.HasNetns == 0 {
		t.Errorf("no netns inode")
	}
	if ifc := src.Interfaces()[got.Interface]; ifc.LinkType != pcapng.LinkTypeRaw {
		t.Errorf("link type %v, want raw IP", ifc.LinkType)
	}
	if other := sink.find(func(pk *pcapng.Packet) bool { return !match(pk) }); len(other) > 0 {
		t.Errorf("filter let %d other packets through, e.g. % x", len(other), other[0].Data[:min(len(other[0].Data), 32)])
	}
	st := src.Stats()
	if st[0].Captured == 0 || st[0].Seen <= st[0].Matched {
		t.Errorf("stats %+v", st[0])
	}
	src.Close()
	testutils.WaitProgramsUnloaded(t, "probe_", before)
	// Everything but the reason works without drop reasons (before 5.17).
	if !t.Failed() {
		kconfig.SkipOrFailFeature(t, reasons, "drop reasons", "5.17")
	}
}

// TestTraceMultiHookPacketID: one ping seen at two hooks carries one packet
// id (the sk_buff's address) at both.
func TestTraceMultiHookPacketID(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	src, sink, stop := runCapture(t, Options{
		Hooks:          []string{"tracepoint:net:net_dev_queue", "tp_btf:net_dev_xmit"},
		Proto:          "eth",
		CaptureOptions: hook.CaptureOptions{Filter: "icmp and dst host " + p.PeerIP.String()},
	})
	ping := func() { testutils.Exec(p.HostNSName, "ping", "-c1", "-W1", p.PeerIP.String()) }
	var ids map[uint64][2]bool
	waitFor(t, "one ping at both hooks", ping, func() bool {
		ids = map[uint64][2]bool{}
		for _, pk := range sink.find(func(*pcapng.Packet) bool { return true }) {
			seen := ids[pk.PacketID]
			if src.Interfaces()[pk.Interface].Name == "tp_btf:net_dev_xmit:arg1" {
				seen[1] = true
			} else {
				seen[0] = true
			}
			ids[pk.PacketID] = seen
		}
		for _, s := range ids {
			if s[0] && s[1] {
				return true
			}
		}
		return false
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// proto eth: both copies start at the Ethernet header of the request.
	for _, pk := range sink.find(func(*pcapng.Packet) bool { return true }) {
		if len(pk.Data) < 14+20 || pk.Data[12] != 0x08 || pk.Data[13] != 0x00 || !net.IP(pk.Data[30:34]).Equal(p.PeerIP) {
			t.Errorf("%s: not an Ethernet IPv4 frame to %s: % x", src.Interfaces()[pk.Interface].Name, p.PeerIP, pk.Data[:min(len(pk.Data), 34)])
		}
	}
}

// TestTraceDeviceFilter: `dev IFNAME` restricts the capture in the kernel
// to one device of bpfcap's network namespace. A ping crosses the pair, so
// net_dev_xmit fires on both ends; only the host end's packets come out.
func TestTraceDeviceFilter(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	var (
		src  *Source
		sink *collectSink
		stop func() error
	)
	// Open inside the host end's namespace, as `ip netns exec` would.
	err := testutils.Do(t, p.HostNS, func() error {
		src, sink, stop = runCapture(t, Options{
			Hooks:          []string{"tracepoint:net:net_dev_xmit"},
			Proto:          "eth",
			Device:         p.HostName,
			CaptureOptions: hook.CaptureOptions{Filter: "icmp", CountSeen: true},
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ping := func() { testutils.Exec(p.HostNSName, "ping", "-c1", "-W1", p.PeerIP.String()) }
	waitFor(t, "a ping request on "+p.HostName, ping, func() bool { return len(sink.find(func(*pcapng.Packet) bool { return true })) > 0 })
	// The reply is sent on the peer end; give it a chance to be (wrongly) seen.
	ping()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, pk := range sink.find(func(*pcapng.Packet) bool { return true }) {
		if pk.Device != p.HostName {
			t.Errorf("packet on %q captured with dev %s", pk.Device, p.HostName)
		}
	}
	if st := src.Stats()[0]; st.Seen == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestTraceAutoHeader: with proto auto (and without a filter) a record starts
// at the MAC header when the skb has one and at the network header when it
// has none, each on its own interface. A datagram to a closed port is
// dropped after it was received (MAC header set); one to a neighbour that
// never answers ARP is dropped from the neighbour queue before it got a
// MAC header (after the ARP timeout, about 3 s).
func TestTraceAutoHeader(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	p := testutils.NewVethPair(t)
	absent := net.IPv4(p.PeerIP[0], p.PeerIP[1], p.PeerIP[2], 77).To4()
	src, sink, stop := runCapture(t, Options{Hooks: []string{"tp_btf:kfree_skb"}, Proto: ProtoAuto})
	ifaces := src.Interfaces()
	if len(ifaces) != 2 || ifaces[0].LinkType != pcapng.LinkTypeEthernet || ifaces[1].LinkType != pcapng.LinkTypeRaw {
		t.Fatalf("interfaces %+v, want eth and raw IP for one hook", ifaces)
	}
	toPort := func(ip net.IP, port int) func(*pcapng.Packet) bool {
		return func(pk *pcapng.Packet) bool {
			b := pk.Data
			if ifaces[pk.Interface].LinkType == pcapng.LinkTypeEthernet {
				if len(b) < 14 || b[12] != 0x08 || b[13] != 0 {
					return false
				}
				b = b[14:]
			}
			return udpDstPort(b) == port && net.IP(b[16:20]).Equal(ip)
		}
	}
	sendUDP(t, p, absent, 6547)
	sends := 0
	waitFor(t, "both drops", func() {
		sendUDP(t, p, p.PeerIP, 6546)
		// Again about every second, in case the first one never reached
		// the neighbour queue (the pair was still settling).
		if sends++; sends%50 == 0 {
			sendUDP(t, p, absent, 6547)
		}
	}, func() bool {
		return len(sink.find(toPort(p.PeerIP, 6546))) > 0 && len(sink.find(toPort(absent, 6547))) > 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if pk := sink.find(toPort(p.PeerIP, 6546))[0]; ifaces[pk.Interface].LinkType != pcapng.LinkTypeEthernet {
		t.Errorf("received datagram captured as %v, want eth", ifaces[pk.Interface].LinkType)
	}
	if pk := sink.find(toPort(absent, 6547))[0]; ifaces[pk.Interface].LinkType != pcapng.LinkTypeRaw {
		t.Errorf("unsent datagram captured as %v, want raw IP (no MAC header yet)", ifaces[pk.Interface].LinkType)
	} else {
		t.Logf("unsent datagram: reason %s", pk.DropReason)
	}
}

// TestTracePagedData: a large datagram on loopback (which does
// scatter-gather) keeps most of its payload in paged frags. Where the
// kernel shows where it maps pages (x86-64, page_offset_base and
// vmemmap_base in /proc/kallsyms, or a fixed layout), the record holds
// min(snap length, wire length) bytes, the payload byte for byte, and the
// in-kernel filter matched on a payload byte that lives in a frag. Where it
// does not, the record holds the linear part only and one notice says so.
// Under vmtest a kernel with CONFIG_KALLSYMS_ALL must copy the frags.
func TestTracePagedData(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	pages := findPageMap()
	if os.Getenv(kconfig.EnvVMTest) != "" && runtime.GOARCH == "amd64" &&
		kconfig.Enabled("CONFIG_KALLSYMS_ALL") == kconfig.Yes && pages.Mode == fragsNone {
		t.Fatalf("kernel config: CONFIG_KALLSYMS_ALL=y, yet paged data would not be copied: %s", pages.Reason)
	}
	if pages.Mode == fragsNone {
		t.Logf("paged frags are not copied on this kernel: %s", pages.Reason)
	} else {
		t.Logf("paged frags are copied (page map mode %d)", pages.Mode)
	}
	const port, payloadLen = 6550, 20000
	payload := make([]byte, payloadLen)
	for i := range payload {
		payload[i] = byte(i % 251)
	}
	// Payload bytes 992..995 are far past the linear headers.
	filter := "udp dst port 6550"
	if pages.Mode != fragsNone {
		filter += fmt.Sprintf(" and udp[1000:4] = 0x%08x", binary.BigEndian.Uint32(payload[992:]))
	}
	for _, snap := range []int{0, 3000} {
		t.Run(fmt.Sprintf("snaplen=%d", snap), func(t *testing.T) {
			p := testutils.NewVethPair(t)
			var notices testutils.SyncBuffer
			var (
				src  *Source
				sink *collectSink
				stop func() error
			)
			err := testutils.Do(t, p.HostNS, func() error {
				src, sink, stop = runCapture(t, Options{
					Hooks:          []string{"tracepoint:net:net_dev_xmit"},
					Proto:          "eth",
					Device:         "lo",
					CaptureOptions: hook.CaptureOptions{Filter: filter, Snaplen: snap, Ring: hook.RingOptions{Notices: &notices}},
				})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := src.Interfaces()[0].Description; strings.Contains(d, "userspace") {
				t.Fatalf("the filter does not run in the kernel: %s", d)
			}
			send := func() {
				testutils.Do(t, p.HostNS, func() error {
					c, err := net.ListenUDP("udp4", nil)
					if err != nil {
						return err
					}
					defer c.Close()
					_, err = c.WriteToUDP(payload, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
					return err
				})
			}
			all := func(*pcapng.Packet) bool { return true }
			waitFor(t, "a large datagram on lo", send, func() bool { return len(sink.find(all)) > 0 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			pk := sink.find(all)[0]
			const hdrs = 14 + 20 + 8
			if want := hdrs + payloadLen; pk.WireLen != want {
				t.Errorf("wire length %d, want %d", pk.WireLen, want)
			}
			limit := pk.WireLen
			if snap > 0 {
				limit = min(snap, pk.WireLen)
			}
			if pages.Mode == fragsNone {
				if len(pk.Data) >= limit || len(pk.Data) < hdrs {
					t.Errorf("captured %d of %d bytes: want the linear headers and not the paged payload", len(pk.Data), pk.WireLen)
				}
				if !strings.Contains(notices.String(), "paged") {
					t.Errorf("no notice about paged data; notices:\n%s", notices.String())
				}
				return
			}
			if len(pk.Data) != limit {
				t.Fatalf("captured %d of %d bytes, want %d (linear part and paged frags); notices:\n%s", len(pk.Data), pk.WireLen, limit, notices.String())
			}
			if got, want := pk.Data[hdrs:], payload[:limit-hdrs]; !bytes.Equal(got, want) {
				at := 0
				for at < len(got) && got[at] == want[at] {
					at++
				}
				t.Errorf("payload differs from byte %d on: got % x, want % x", at, got[at:min(at+16, len(got))], want[at:min(at+16, len(want))])
			}
			if n := notices.String(); strings.Contains(n, "captured up to") || strings.Contains(n, "short of") {
				t.Errorf("notice about data not copied:\n%s", n)
			}
		})
	}
}
