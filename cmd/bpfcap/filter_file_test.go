package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// udpPacket serialises an IPv4 UDP datagram, behind an Ethernet header
// when eth is set.
func udpPacket(t *testing.T, eth bool) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 1, 2, 3), DstIP: net.IPv4(10, 4, 5, 6)}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	ls := []gopacket.SerializableLayer{ip, udp, gopacket.Payload("hello")}
	if eth {
		ls = append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}}, ls...)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// section returns one pcapng section with one interface of link type lt
// (snap length snap) holding data.
func section(t *testing.T, lt pcapng.LinkType, snap uint32, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapng.NewWriter(&b, pcapng.WriterOptions{Application: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapng.Interface{Name: "if", LinkType: lt, SnapLen: snap}); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(&pcapng.Packet{Interface: 0, Timestamp: time.Unix(1, 0), Data: data, WireLen: len(data)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFilterCLIFileFaults: `bpfcap filter -r` on a pcapng of two sections
// of different link types filters each section with its own program; a
// pcap whose link type is above 65535 and a pcapng packet longer than its
// interface's snap length are refused (as libpcap refuses them), exit 2.
func TestFilterCLIFileFaults(t *testing.T) {
	testutils.RunsInGuests(t)
	testutils.RequireRoot(t)
	dir := t.TempDir()

	two := filepath.Join(dir, "two.pcapng")
	ethUDP, rawUDP := udpPacket(t, true), udpPacket(t, false)
	file := append(section(t, pcapng.LinkTypeEthernet, 0, ethUDP), section(t, pcapng.LinkTypeRaw, 0, rawUDP)...)
	if err := os.WriteFile(two, file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runFilterCLI(t, nil, "-r", two, "udp port 53"); err != nil || !strings.Contains(stderr, "2 matched of 2") {
		t.Fatalf("two sections: %v, %q; want both packets matched", err, stderr)
	}

	bigLT := filepath.Join(dir, "biglt.pcap")
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 0x10001) // 65537: read as 1 (Ethernet) in 16 bits
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(ethUDP)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(ethUDP)))
	if err := os.WriteFile(bigLT, append(append(hdr, rec...), ethUDP...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runFilterCLI(t, nil, "-r", bigLT, "udp")
	if err == nil || !strings.Contains(err.Error(), "link type 65537") || exitCode(err, &bytes.Buffer{}) != 2 {
		t.Fatalf("link type 65537: %v", err)
	}

	long := filepath.Join(dir, "long.pcapng")
	sec := section(t, pcapng.LinkTypeEthernet, 1000, ethUDP)
	shbLen := binary.LittleEndian.Uint32(sec[4:])
	binary.LittleEndian.PutUint32(sec[shbLen+12:], 20) // the IDB's snap length, below the packet's 47 bytes
	if err := os.WriteFile(long, sec, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runFilterCLI(t, nil, "-r", long, "udp")
	if err == nil || !strings.Contains(err.Error(), "more than its interface's snap length 20") || exitCode(err, &bytes.Buffer{}) != 2 {
		t.Fatalf("packet beyond the snap length: %v", err)
	}
}

// TestFilterCLIKeepsBlocks: `bpfcap filter -r IN -w OUT` on a pcapng
// bpfcap wrote keeps every block but the packets that do not match, byte
// for byte: the interfaces' names and descriptions, the packets' comments,
// flags, ids and verdicts, a custom option, the statistics. tshark reads
// the same fields from OUT as from IN's matching packets (a host test: it
// needs tshark).
func TestFilterCLIKeepsBlocks(t *testing.T) {
	testutils.RequireRoot(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pcapng"), filepath.Join(dir, "out.pcapng")

	var b bytes.Buffer
	w, err := pcapng.NewWriter(&b, pcapng.WriterOptions{Application: "bpfcap"})
	if err != nil {
		t.Fatal(err)
	}
	drop, err := w.AddInterface(pcapng.Interface{Name: "tp_btf:kfree_skb", Description: "drops seen at kfree_skb", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536})
	if err != nil {
		t.Fatal(err)
	}
	xdp, err := w.AddInterface(pcapng.Interface{Name: "xdp:/sys/fs/bpf/hook", Description: "the hook's verdicts", LinkType: pcapng.LinkTypeEthernet, SnapLen: 65536})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp := udpPacket(t, true), tcpPacket(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		p := &pcapng.Packet{Interface: drop, Timestamp: ts.Add(time.Duration(i) * time.Millisecond), Data: udp, WireLen: len(udp),
			Flags: pcapng.HasPacketID | pcapng.HasPID, PacketID: 0xffff0000 + uint64(i), Direction: pcapng.DirectionInbound,
			DropReason: "NETFILTER_DROP", Device: "veth0", PID: 40 + uint32(i), Comm: "curl"}
		if i%2 == 1 {
			p.Data, p.WireLen, p.Interface = tcp, len(tcp), xdp
			p.VerdictType, p.Verdict, p.DropReason = pcapng.VerdictXDP, 1, ""
		}
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteStats(drop, ts, ts.Add(time.Second), pcapng.InterfaceStats{Seen: 7, SeenCounted: true, Matched: 6, Captured: 6, Lost: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// A packet with a custom option (code 2989: copyable, UTF-8) after
	// the statistics.
	custom := customEPB(udp, "kept as written")
	if err := os.WriteFile(in, append(b.Bytes(), custom...), 0o644); err != nil {
		t.Fatal(err)
	}

	if _, stderr, err := runFilterCLI(t, nil, "-r", in, "-w", out, "udp"); err != nil || !strings.Contains(stderr, "4 matched of 7") {
		t.Fatalf("filter -r -w: %v, %q; want 4 matched of 7", err, stderr)
	}

	// OUT is IN without the TCP packets' blocks, byte for byte.
	inBlocks, outBlocks := ngBlocks(t, in), ngBlocks(t, out)
	var want [][]byte
	for _, blk := range inBlocks {
		if binary.LittleEndian.Uint32(blk) == 6 && bytes.Contains(blk, tcp) {
			continue
		}
		want = append(want, blk)
	}
	if len(outBlocks) != len(want) {
		t.Fatalf("output has %d blocks, want %d (the input's %d less the TCP packets)", len(outBlocks), len(want), len(inBlocks))
	}
	for i := range want {
		if !bytes.Equal(outBlocks[i], want[i]) {
			t.Errorf("block %d (type %#x) changed", i, binary.LittleEndian.Uint32(want[i]))
		}
	}

	// tshark reads the same metadata from OUT as from IN's UDP packets.
	fields := []string{"-T", "fields", "-e", "frame.interface_name", "-e", "frame.interface_description", "-e", "frame.comment",
		"-e", "frame.packet_id", "-e", "frame.packet_flags_direction"}
	tsharkOut, err := exec.Command("tshark", append([]string{"-n", "-r", out}, fields...)...).Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", out, err)
	}
	tsharkIn, err := exec.Command("tshark", append([]string{"-n", "-r", in, "-Y", "udp"}, fields...)...).Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", in, err)
	}
	if string(tsharkOut) != string(tsharkIn) {
		t.Errorf("tshark reads from the output:\n%s\nfrom the input's UDP packets:\n%s", tsharkOut, tsharkIn)
	}
	lines := strings.Split(strings.TrimSpace(string(tsharkOut)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "tp_btf:kfree_skb\tdrops seen at kfree_skb\t") ||
		!strings.Contains(lines[0], "NETFILTER_DROP") || !strings.Contains(lines[0], "curl") || !strings.Contains(lines[3], "kept as written") {
		t.Errorf("tshark fields of the output:\n%s\nwant 4 packets with the interface's name and description and their comments", tsharkOut)
	}
}

// tcpPacket serialises an Ethernet IPv4 TCP segment to port 80.
func tcpPacket(t *testing.T) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IPv4(10, 1, 2, 3), DstIP: net.IPv4(10, 4, 5, 6)}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Window: 1024}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// customEPB returns a little-endian Enhanced Packet Block on interface 0
// holding data, with an opt_comment and a custom option (code 2989,
// private enterprise number 32473, the example PEN of RFC 5612).
func customEPB(data []byte, comment string) []byte {
	le := binary.LittleEndian
	opt := func(b []byte, code uint16, v []byte) []byte {
		b = le.AppendUint16(b, code)
		b = le.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
		return append(b, make([]byte, (4-len(v)%4)%4)...)
	}
	body := le.AppendUint32(nil, 0) // interface
	body = le.AppendUint32(body, 0) // timestamp high
	body = le.AppendUint32(body, 1) // timestamp low
	body = le.AppendUint32(body, uint32(len(data)))
	body = le.AppendUint32(body, uint32(len(data)))
	body = append(body, data...)
	body = append(body, make([]byte, (4-len(data)%4)%4)...)
	body = opt(body, 1, []byte(comment))
	body = opt(body, 2989, append(le.AppendUint32(nil, 32473), "bpfcap test"...))
	body = opt(body, 0, nil)
	n := uint32(12 + len(body))
	blk := le.AppendUint32(nil, 6)
	blk = le.AppendUint32(blk, n)
	blk = append(blk, body...)
	return le.AppendUint32(blk, n)
}

// ngBlocks returns the blocks of a little-endian pcapng file.
func ngBlocks(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(b) > 0 {
		blk, rest, err := pcapng.SplitBlock(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out, b = append(out, blk), rest
	}
	return out
}
