package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
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
