package filter

import (
	"bytes"
	"flag"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

var updateDemo = flag.Bool("update-demo", false, "rewrite testdata/filter-demo.pcap")

// demoPcapPath is the shipped demo capture (`make demo`, scripts/demo-filter.sh).
const demoPcapPath = "../testdata/filter-demo.pcap"

// demoPackets builds the demo capture: a small, deterministic mix of web,
// DNS, ping, ARP, IPv6 and VLAN traffic, each packet well formed.
func demoPackets(t testing.TB) [][]byte {
	client, server := net.IPv4(10, 0, 0, 2).To4(), net.IPv4(10, 0, 0, 1).To4()
	client6, server6 := net.ParseIP("2001:db8::2"), net.ParseIP("2001:db8::1")
	cmac, smac := net.HardwareAddr{2, 0, 0, 0, 0, 2}, net.HardwareAddr{2, 0, 0, 0, 0, 1}
	var out [][]byte
	ser := func(ls ...gopacket.SerializableLayer) {
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte{}, buf.Bytes()...))
	}
	eth := func(src, dst net.HardwareAddr, et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et}
	}
	ip4 := func(src, dst net.IP, p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: p, Id: uint16(len(out))}
	}
	ip6 := func(src, dst net.IP, p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: p}
	}
	tcp := func(sp, dp int, syn, ack, psh, fin bool, seq uint32, ipl gopacket.NetworkLayer) *layers.TCP {
		l := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), SYN: syn, ACK: ack, PSH: psh, FIN: fin, Seq: seq, Window: 65535}
		l.SetNetworkLayerForChecksum(ipl)
		return l
	}
	udp := func(sp, dp int, ipl gopacket.NetworkLayer) *layers.UDP {
		l := &layers.UDP{SrcPort: layers.UDPPort(sp), DstPort: layers.UDPPort(dp)}
		l.SetNetworkLayerForChecksum(ipl)
		return l
	}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: cmac, SourceProtAddress: client, DstHwAddress: make([]byte, 6), DstProtAddress: server}
	ser(eth(cmac, layers.EthernetBroadcast, layers.EthernetTypeARP), arp)
	// DNS query and answer.
	q := ip4(client, server, layers.IPProtocolUDP)
	ser(eth(cmac, smac, layers.EthernetTypeIPv4), q, udp(40000, 53, q), gopacket.Payload("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"))
	a := ip4(server, client, layers.IPProtocolUDP)
	ser(eth(smac, cmac, layers.EthernetTypeIPv4), a, udp(53, 40000, a), gopacket.Payload("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"))
	// An HTTP exchange on port 80, both directions.
	for _, step := range []struct {
		fromClient, syn, ack, psh, fin bool
		seq, ackNum                    uint32
		payload                        string
	}{
		{true, true, false, false, false, 1000, 0, ""},
		{false, true, true, false, false, 5000, 1001, ""},
		{true, false, true, false, false, 1001, 5001, ""},
		{true, false, true, true, false, 1001, 5001, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{false, false, true, true, false, 5001, 1038, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
		{true, false, true, false, true, 1038, 5044, ""},
		{false, false, true, false, true, 5044, 1039, ""},
	} {
		src, dst, sm, dm, sp, dp := client, server, cmac, smac, 51000, 80
		if !step.fromClient {
			src, dst, sm, dm, sp, dp = server, client, smac, cmac, 80, 51000
		}
		l3 := ip4(src, dst, layers.IPProtocolTCP)
		l4 := tcp(sp, dp, step.syn, step.ack, step.psh, step.fin, step.seq, l3)
		l4.Ack = step.ackNum
		ser(eth(sm, dm, layers.EthernetTypeIPv4), l3, l4, gopacket.Payload(step.payload))
	}
	// HTTPS and SSH, which 'tcp port 80' must not match.
	for _, port := range []int{443, 22, 8080} {
		l3 := ip4(client, server, layers.IPProtocolTCP)
		ser(eth(cmac, smac, layers.EthernetTypeIPv4), l3, tcp(52000, port, true, false, false, false, 7, l3))
	}
	// Ping.
	for _, typ := range []uint8{layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply} {
		l3 := ip4(client, server, layers.IPProtocolICMPv4)
		ser(eth(cmac, smac, layers.EthernetTypeIPv4), l3, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 1, Seq: 1}, gopacket.Payload("ping"))
	}
	// IPv6 web traffic.
	for _, dp := range []int{80, 443} {
		l3 := ip6(client6, server6, layers.IPProtocolTCP)
		ser(eth(cmac, smac, layers.EthernetTypeIPv6), l3, tcp(53000, dp, true, false, false, false, 9, l3))
	}
	// Web traffic on VLAN 100 ('tcp port 80' does not look inside VLANs;
	// 'vlan and tcp port 80' does).
	l3 := ip4(client, server, layers.IPProtocolTCP)
	ser(eth(cmac, smac, layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, l3, tcp(54000, 80, true, false, false, false, 11, l3))
	return out
}

// writeDemoPcap writes pkts as a pcap with fixed timestamps.
func writeDemoPcap(pkts [][]byte) ([]byte, error) {
	var b bytes.Buffer
	w := pcapgo.NewWriterNanos(&b)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: base.Add(time.Duration(i) * 1500 * time.Microsecond), CaptureLength: len(p), Length: len(p)}
		if err := w.WritePacket(ci, p); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// TestFilterDemoPcap checks that the shipped demo capture is what
// demoPackets generates (go test ./filter -run DemoPcap -update-demo
// rewrites it).
func TestFilterDemoPcap(t *testing.T) {
	testutils.RunsInGuests(t)
	want, err := writeDemoPcap(demoPackets(t))
	if err != nil {
		t.Fatal(err)
	}
	if *updateDemo {
		if err := os.WriteFile(demoPcapPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(demoPcapPath)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./filter -run DemoPcap -update-demo)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what demoPackets generates: regenerate with -update-demo", demoPcapPath)
	}
}
