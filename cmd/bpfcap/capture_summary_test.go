package main

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/bpfcap/bpfcap/pcapng"
)

var update = flag.Bool("update", false, "rewrite golden files")

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSummaryGolden(t *testing.T) {
	mac1, _ := net.ParseMAC("02:00:00:00:00:01")
	mac2, _ := net.ParseMAC("02:00:00:00:00:02")
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: et}
	}
	ip4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: net.IPv4(10, 99, 1, 1), DstIP: net.IPv4(10, 99, 1, 2)}
	}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2")}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	tcp := &layers.TCP{SrcPort: 40001, DstPort: 6666, SYN: true, Seq: 1000, Window: 64240}
	udp6 := &layers.UDP{SrcPort: 5353, DstPort: 5353}
	udp6.SetNetworkLayerForChecksum(ip6)
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: mac1, SourceProtAddress: []byte{10, 99, 1, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 99, 1, 2}}
	ipUDP, ipTCP := ip4(layers.IPProtocolUDP), ip4(layers.IPProtocolTCP)
	udp.SetNetworkLayerForChecksum(ipUDP)
	tcp.SetNetworkLayerForChecksum(ipTCP)

	t0 := time.Date(2026, 12, 1, 19, 30, 0, 123456789, time.UTC)
	dns := serialize(t, eth(layers.EthernetTypeIPv4), ipUDP, udp, gopacket.Payload(make([]byte, 32)))
	syn := serialize(t, ipTCP, tcp)
	cases := []struct {
		p  pcapng.Packet
		lt pcapng.LinkType
	}{
		{pcapng.Packet{Hook: "xdp:/sys/fs/bpf/hook", Data: dns, WireLen: len(dns), Direction: pcapng.DirectionInbound, Device: "veth0",
			VerdictType: pcapng.VerdictXDP, Verdict: 2, Flags: pcapng.HasPacketID, PacketID: 0xffff8880deadbeef}, pcapng.LinkTypeEthernet},
		{pcapng.Packet{Hook: "tp_btf:kfree_skb", Data: syn, WireLen: len(syn), VerdictType: pcapng.VerdictNone, DropReason: "NETFILTER_DROP",
			Flags: pcapng.HasPID, PID: 4242, Comm: "nc"}, pcapng.LinkTypeRaw},
		{pcapng.Packet{Hook: "tc:eth0:egress", Data: serialize(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), icmp), WireLen: 98,
			Direction: pcapng.DirectionOutbound, Device: "eth0", VerdictType: pcapng.VerdictTC, Verdict: 0}, pcapng.LinkTypeEthernet},
		{pcapng.Packet{Hook: "tracepoint:net:net_dev_xmit", Data: serialize(t, ip6, udp6, gopacket.Payload([]byte("hello"))), WireLen: 53, VerdictType: pcapng.VerdictNone}, pcapng.LinkTypeRaw},
		{pcapng.Packet{Hook: "tc:eth0:ingress", Data: serialize(t, eth(layers.EthernetTypeARP), arp), WireLen: 42, VerdictType: pcapng.VerdictNone}, pcapng.LinkTypeEthernet},
		{pcapng.Packet{Hook: "xdp:dev:eth0", Data: dns[:14], WireLen: 1514, VerdictType: pcapng.VerdictNone}, pcapng.LinkTypeEthernet},
		{pcapng.Packet{Hook: "xdp:dev:eth0", Data: append(dns[:12:12], 0x88, 0xcc, 1, 2), WireLen: 60, VerdictType: pcapng.VerdictNone}, pcapng.LinkTypeEthernet},
	}
	var got strings.Builder
	for i, c := range cases {
		c.p.Timestamp = t0.Add(time.Duration(i) * time.Millisecond)
		got.WriteString(summaryLine(&c.p, c.lt, time.UTC) + "\n")
	}
	golden := filepath.Join("testdata", "capture_summary.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got.String() != string(want) {
		t.Errorf("summary lines differ from %s\n got:\n%s\nwant:\n%s", golden, got.String(), want)
	}
}
