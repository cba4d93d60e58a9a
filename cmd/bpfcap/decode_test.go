package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/bpfcap/bpfcap/pcapng"
)

// decodeFrame is one frame of the decoder corpus: its bytes, and how many
// of them were captured (0: all).
type decodeFrame struct {
	data []byte
	snap int
}

// decodeCorpus builds Ethernet frames of the protocols the line decoder
// words as tcpdump -n does.
func decodeCorpus(t *testing.T) []decodeFrame {
	mac1, _ := net.ParseMAC("02:00:00:00:00:01")
	mac2, _ := net.ParseMAC("02:00:00:00:00:02")
	a, b := net.IPv4(10, 0, 0, 1).To4(), net.IPv4(10, 0, 0, 2).To4()
	a6, b6 := net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
	eth := func(et layers.EthernetType, src, dst net.HardwareAddr) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et}
	}
	ip4 := func(p layers.IPProtocol, src, dst net.IP) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Id: 1, Protocol: p, SrcIP: src, DstIP: dst, Flags: layers.IPv4DontFragment}
	}
	ip6 := func(p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: a6, DstIP: b6}
	}
	var frames []decodeFrame
	add := func(snap int, ls ...gopacket.SerializableLayer) {
		for _, l := range ls {
			switch l := l.(type) {
			case *layers.TCP:
				for _, n := range ls {
					if nl, ok := n.(gopacket.NetworkLayer); ok {
						l.SetNetworkLayerForChecksum(nl)
					}
				}
			case *layers.ICMPv6:
				for _, n := range ls {
					if nl, ok := n.(gopacket.NetworkLayer); ok {
						l.SetNetworkLayerForChecksum(nl)
					}
				}
			case *layers.UDP:
				for _, n := range ls {
					if nl, ok := n.(gopacket.NetworkLayer); ok {
						l.SetNetworkLayerForChecksum(nl)
					}
				}
			}
		}
		frames = append(frames, decodeFrame{data: serialize(t, ls...), snap: snap})
	}
	tcp := func(src, dst net.IP, sp, dp layers.TCPPort, seq, ack uint32, f string, opts []layers.TCPOption, payload []byte, snap int) {
		tc := &layers.TCP{SrcPort: sp, DstPort: dp, Seq: seq, Ack: ack, Window: 502, Options: opts,
			SYN: strings.Contains(f, "S"), ACK: strings.Contains(f, "."), PSH: strings.Contains(f, "P"),
			FIN: strings.Contains(f, "F"), RST: strings.Contains(f, "R"), URG: strings.Contains(f, "U")}
		if tc.URG {
			tc.Urgent = 3
		}
		src1, dst1 := mac1, mac2
		if src.Equal(b) {
			src1, dst1 = mac2, mac1
		}
		add(snap, eth(layers.EthernetTypeIPv4, src1, dst1), ip4(layers.IPProtocolTCP, src, dst), tc, gopacket.Payload(payload))
	}
	mss := layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}
	nop := layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	sackOK := layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}
	ts := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 0}}
	ws := layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}
	sack := layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: 10, OptionData: []byte{0, 0, 0x13, 0x8d, 0, 0, 0x13, 0x91}}
	tcp(a, b, 40001, 33333, 1000, 0, "S", []layers.TCPOption{mss, sackOK, ts, nop, ws}, nil, 0)
	tcp(b, a, 33333, 40001, 5000, 1001, "S.", []layers.TCPOption{mss, nop, nop, sackOK, nop, ws}, nil, 0)
	tcp(a, b, 40001, 33333, 1001, 5001, ".", nil, nil, 0)
	tcp(a, b, 40001, 33333, 1001, 5001, "P.", nil, []byte("ping"), 0)
	tcp(b, a, 33333, 40001, 5001, 1005, "P.", []layers.TCPOption{nop, nop, sack}, make([]byte, 88), 70)
	tcp(a, b, 40001, 33333, 1005, 5089, "FP.U", nil, nil, 0)
	tcp(b, a, 33333, 40001, 5089, 0, "R", nil, nil, 0)
	tcp(a, b, 40002, 33334, 77, 99, ".", nil, make([]byte, 10), 0)
	add(0, eth(layers.EthernetTypeIPv4, mac1, mac2), ip4(layers.IPProtocolUDP, a, b), &layers.UDP{SrcPort: 40000, DstPort: 34567}, gopacket.Payload("hello"))
	add(0, eth(layers.EthernetTypeIPv4, mac1, mac2), ip4(layers.IPProtocolICMPv4, a, b),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	add(0, eth(layers.EthernetTypeIPv4, mac2, mac1), ip4(layers.IPProtocolICMPv4, b, a),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: 7, Seq: 1}, gopacket.Payload(make([]byte, 56)))
	// A port unreachable quoting the datagram that caused it.
	qip, qudp := ip4(layers.IPProtocolUDP, a, b), &layers.UDP{SrcPort: 40000, DstPort: 6544}
	qudp.SetNetworkLayerForChecksum(qip)
	quoted := serialize(t, qip, qudp, gopacket.Payload("bpfcap"))
	add(0, eth(layers.EthernetTypeIPv4, mac2, mac1), ip4(layers.IPProtocolICMPv4, b, a),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}, gopacket.Payload(quoted))
	add(0, eth(layers.EthernetTypeIPv4, mac2, mac1), ip4(layers.IPProtocolICMPv4, b, a),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeTimeExceeded, 0)}, gopacket.Payload(quoted))
	add(0, eth(layers.EthernetTypeARP, mac1, layers.EthernetBroadcast), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: mac1, SourceProtAddress: a, DstHwAddress: make([]byte, 6), DstProtAddress: b})
	add(0, eth(layers.EthernetTypeARP, mac2, mac1), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPReply, SourceHwAddress: mac2, SourceProtAddress: b, DstHwAddress: mac1, DstProtAddress: a})
	add(0, eth(layers.EthernetTypeDot1Q, mac1, mac2), &layers.Dot1Q{VLANIdentifier: 100, Priority: 3, Type: layers.EthernetTypeIPv4},
		ip4(layers.IPProtocolUDP, a, b), &layers.UDP{SrcPort: 40000, DstPort: 34567}, gopacket.Payload("vlan"))
	add(0, eth(layers.EthernetTypeIPv6, mac1, mac2), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 40000, DstPort: 34567}, gopacket.Payload("hello6"))
	add(0, eth(layers.EthernetTypeIPv6, mac1, mac2), ip6(layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}, gopacket.Payload(append([]byte{0, 9, 0, 2}, make([]byte, 56)...)))
	add(0, eth(layers.EthernetTypeIPv6, mac1, mac2), ip6(layers.IPProtocolTCP),
		&layers.TCP{SrcPort: 40003, DstPort: 33335, Seq: 42, SYN: true, Window: 64800, Options: []layers.TCPOption{mss}})
	// A datagram in two fragments, and an IPv4 header with options.
	frag1 := ip4(layers.IPProtocolUDP, a, b)
	frag1.Flags, frag1.Id = layers.IPv4MoreFragments, 77
	add(0, eth(layers.EthernetTypeIPv4, mac1, mac2), frag1, &layers.UDP{SrcPort: 40000, DstPort: 34567, Length: 1500}, gopacket.Payload(make([]byte, 32)))
	frag2 := ip4(layers.IPProtocolUDP, a, b)
	frag2.Flags, frag2.Id, frag2.FragOffset = 0, 77, 5
	add(0, eth(layers.EthernetTypeIPv4, mac1, mac2), frag2, gopacket.Payload(make([]byte, 40)))
	withOpts := ip4(layers.IPProtocolICMPv4, a, b)
	withOpts.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}}
	add(0, eth(layers.EthernetTypeIPv4, mac1, mac2), withOpts,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 8, Seq: 2}, gopacket.Payload(make([]byte, 8)))
	add(0, eth(layers.EthernetType(0x88b5), mac1, mac2), gopacket.Payload(make([]byte, 46)))
	// A wrong TCP checksum (-v says so and what it should be).
	tcp(a, b, 40005, 33337, 1, 0, "S", nil, nil, 0)
	frames[len(frames)-1].data[14+20+16] ^= 0x5a
	// A wrong IPv4 header checksum.
	add(0, eth(layers.EthernetTypeIPv4, mac1, mac2), ip4(layers.IPProtocolUDP, a, b), &layers.UDP{SrcPort: 40006, DstPort: 34568}, gopacket.Payload("x"))
	frames[len(frames)-1].data[14+10] ^= 0x11
	// Cut short by the snap length: in the IP header, in the TCP header.
	tcp(a, b, 40004, 33336, 1, 0, "S", nil, nil, 20)
	tcp(a, b, 40004, 33336, 1, 0, "S", nil, nil, 44)
	return frames
}

// writeDecodePcap writes the corpus as a pcap file tcpdump reads.
func writeDecodePcap(t *testing.T, frames []decodeFrame) string {
	path := filepath.Join(t.TempDir(), "decode.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i, fr := range frames {
		data := fr.data
		if fr.snap > 0 {
			data = data[:fr.snap]
		}
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(fr.data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// decodeLines is the decoder's text for every frame of the corpus.
func decodeLines(frames []decodeFrame, linkHeader bool) string {
	return decodeDumpLines(frames, linkHeader, dumpOptions{})
}

// decodeDumpLines is decodeLines with payload dumps.
func decodeDumpLines(frames []decodeFrame, linkHeader bool, dump dumpOptions) string {
	return decodeVerboseLines(frames, linkHeader, false, dump)
}

// decodeVerboseLines is decodeDumpLines with -v.
func decodeVerboseLines(frames []decodeFrame, linkHeader, verbose bool, dump dumpOptions) string {
	return decodeWith(frames, &lineDecoder{LinkHeader: linkHeader, Verbose: verbose}, dump)
}

// decodeWith decodes the corpus with d.
func decodeWith(frames []decodeFrame, d *lineDecoder, dump dumpOptions) string {
	var b strings.Builder
	for _, fr := range frames {
		data := fr.data
		if fr.snap > 0 {
			data = data[:fr.snap]
		}
		b.WriteString(d.decode(data, pcapng.LinkTypeEthernet, len(fr.data)))
		dump.dump(&b, data, pcapng.LinkTypeEthernet)
		b.WriteString("\n")
	}
	return b.String()
}

// TestDecodeHostTcpdumpDumps: -x, -xx, -X, -XX and -A print what tcpdump
// prints after each line, on the same frames.
func TestDecodeHostTcpdumpDumps(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("host test needs tcpdump: %v", err)
	}
	frames := decodeCorpus(t)
	path := writeDecodePcap(t, frames)
	for _, tc := range []struct {
		flag string
		dump dumpOptions
	}{
		{"-x", dumpOptions{Hex: 1}}, {"-xx", dumpOptions{Hex: 2}}, {"-X", dumpOptions{HexASCII: 1}},
		{"-XX", dumpOptions{HexASCII: 2}}, {"-A", dumpOptions{ASCII: 1}}, {"-AA", dumpOptions{ASCII: 2}},
	} {
		cmd := exec.Command("tcpdump", "-n", "-t", tc.flag, "-r", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tcpdump %s: %v\n%s", tc.flag, err, stderr.String())
		}
		if tc.dump.ASCII > 0 {
			// tcpdump adds its hex dump of an unknown EtherType's
			// payload before -A's text; a bpfcap line does not.
			out = oneLinePerPacket(out)
		}
		compareLines(t, "tcpdump "+tc.flag, decodeDumpLines(frames, false, tc.dump), string(out))
	}
}

// TestDecodeGolden: the decoder's lines match the golden files, which are
// tcpdump -n -t's (and -e's) output on the same frames (see
// TestDecodeHostTcpdump). Guest-safe.
func TestDecodeGolden(t *testing.T) {
	frames := decodeCorpus(t)
	for _, tc := range []struct {
		golden string
		e, v   bool
	}{{"decode-tcpdump-n.golden", false, false}, {"decode-tcpdump-ne.golden", true, false},
		{"decode-tcpdump-nv.golden", false, true}, {"decode-tcpdump-nev.golden", true, true}} {
		want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
		if err != nil {
			t.Fatalf("%v (TestDecodeHostTcpdump -update writes it)", err)
		}
		compareLines(t, tc.golden, decodeVerboseLines(frames, tc.e, tc.v, dumpOptions{}), string(want))
	}
}

func compareLines(t *testing.T, name, got, want string) {
	t.Helper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(g) != len(w) {
		t.Errorf("%s: %d lines, want %d", name, len(g), len(w))
	}
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			t.Errorf("%s line %d:\n got %s\nwant %s", name, i+1, g[i], w[i])
		}
	}
}

// TestDecodeHostTcpdump: the golden files are tcpdump -n -t (and -e) on
// the corpus; with -update they are rewritten from tcpdump.
func TestDecodeHostTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("host test needs tcpdump: %v", err)
	}
	frames := decodeCorpus(t)
	path := writeDecodePcap(t, frames)
	for _, tc := range []struct {
		golden string
		args   []string
		e      bool
		v      bool
	}{{"decode-tcpdump-n.golden", []string{"-n", "-t"}, false, false}, {"decode-tcpdump-ne.golden", []string{"-n", "-t", "-e"}, true, false},
		{"decode-tcpdump-nv.golden", []string{"-n", "-t", "-v"}, false, true}, {"decode-tcpdump-nev.golden", []string{"-n", "-t", "-e", "-v"}, true, true}} {
		cmd := exec.Command("tcpdump", append(tc.args, "-r", path)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, stderr.String())
		}
		out = oneLinePerPacket(out)
		golden := filepath.Join("testdata", tc.golden)
		if *update {
			if err := os.WriteFile(golden, out, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		compareLines(t, tc.golden+" vs tcpdump", string(out), string(want))
		compareLines(t, tc.golden+" (decoder vs tcpdump)", decodeVerboseLines(frames, tc.e, tc.v, dumpOptions{}), string(out))
	}
}

// oneLinePerPacket drops the hex dump lines tcpdump adds after a packet
// it cannot decode (a bpfcap line stays one line).
func oneLinePerPacket(out []byte) []byte {
	var keep []string
	for _, l := range strings.SplitAfter(string(out), "\n") {
		if !strings.HasPrefix(l, "\t0x") {
			keep = append(keep, l)
		}
	}
	return []byte(strings.Join(keep, ""))
}

// TestDecodeHostTcpdumpRawSLL: the IP frames of the corpus as raw IP
// (proto ip on one hook) and as Linux cooked captures (proto ip on
// several hooks) read the same in bpfcap's lines as in tcpdump -n.
func TestDecodeHostTcpdumpRawSLL(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("host test needs tcpdump: %v", err)
	}
	var ips [][]byte
	for _, fr := range decodeCorpus(t) {
		et := uint16(fr.data[12])<<8 | uint16(fr.data[13])
		if et != 0x0800 && et != 0x86dd || fr.snap != 0 {
			continue
		}
		ips = append(ips, fr.data[14:])
	}
	for _, tc := range []struct {
		lt     layers.LinkType
		plt    pcapng.LinkType
		header func(ip []byte) []byte
	}{
		{layers.LinkTypeRaw, pcapng.LinkTypeRaw, func([]byte) []byte { return nil }},
		{layers.LinkTypeLinuxSLL, pcapng.LinkTypeLinuxSLL, func(ip []byte) []byte {
			// As hook.Source writes it: outgoing, ARPHRD_NONE, no address.
			et := []byte{0x08, 0x00}
			if ip[0]>>4 == 6 {
				et = []byte{0x86, 0xdd}
			}
			return append([]byte{0, 4, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, et...)
		}},
	} {
		path := filepath.Join(t.TempDir(), "ip.pcap")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriterNanos(f)
		if err := w.WriteFileHeader(65536, tc.lt); err != nil {
			t.Fatal(err)
		}
		d := &lineDecoder{}
		var want strings.Builder
		for i, ip := range ips {
			data := append(tc.header(ip), ip...)
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(data), Length: len(data)}
			if err := w.WritePacket(ci, data); err != nil {
				t.Fatal(err)
			}
			want.WriteString(d.decode(data, tc.plt, len(data)) + "\n")
		}
		f.Close()
		cmd := exec.Command("tcpdump", "-n", "-t", "-r", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, stderr.String())
		}
		compareLines(t, "tcpdump -n on "+tc.plt.String(), want.String(), string(out))
	}
}

// TestDecodeHostTcpdumpSK: -S (absolute sequence numbers) and -v -K (no
// checksum checks) read as in tcpdump.
func TestDecodeHostTcpdumpSK(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatalf("host test needs tcpdump: %v", err)
	}
	frames := decodeCorpus(t)
	path := writeDecodePcap(t, frames)
	for _, tc := range []struct {
		args []string
		d    *lineDecoder
	}{
		{[]string{"-S"}, &lineDecoder{Absolute: true}},
		{[]string{"-v", "-K"}, &lineDecoder{Verbose: true, NoChecksums: true}},
	} {
		cmd := exec.Command("tcpdump", append([]string{"-n", "-t", "-r", path}, tc.args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tcpdump %v: %v\n%s", tc.args, err, stderr.String())
		}
		compareLines(t, "tcpdump "+strings.Join(tc.args, " "), decodeWith(frames, tc.d, dumpOptions{}), string(oneLinePerPacket(out)))
	}
}
