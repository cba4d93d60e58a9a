package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/bpfcap/bpfcap/pcapng"
)

// lineDecoder writes what tcpdump -n prints for a packet (without the
// time stamp), for the protocols bpfcap users see most: Ethernet (with
// -e), 802.1Q, ARP, IPv4 and IPv6, TCP, UDP, ICMP and ICMPv6. Lengths come
// from the headers, not from the captured bytes, as in tcpdump. It keeps
// tcpdump's TCP state (relative sequence numbers after the first ACK of a
// connection), so one decoder reads one stream of packets.
type lineDecoder struct {
	// LinkHeader is -e.
	LinkHeader bool
	// Absolute is -S: absolute TCP sequence numbers.
	Absolute bool
	// Verbose is -v: IP header fields, checksums, the packet an ICMP
	// error quotes; an IPv4 packet then takes two lines, as in tcpdump.
	Verbose bool
	// NoChecksums is -K: -v verifies no IP, TCP or UDP checksum.
	NoChecksums bool

	tcp map[tcpFlow]tcpBase
}

// decode returns tcpdump -n's text for data of link type lt whose
// length on the wire is wire.
func (d *lineDecoder) decode(data []byte, lt pcapng.LinkType, wire int) string {
	var b strings.Builder
	switch lt {
	case pcapng.LinkTypeEthernet:
		d.ether(&b, data, wire)
	case pcapng.LinkTypeRaw, pcapng.LinkTypeIPv4, pcapng.LinkTypeIPv6:
		d.ip(&b, data, wire)
	case pcapng.LinkTypeLinuxSLL:
		d.sll(&b, data, wire)
	default:
		fmt.Fprintf(&b, "link type %s, length %d", lt, wire)
	}
	return b.String()
}

func (d *lineDecoder) ether(b *strings.Builder, data []byte, wire int) {
	if len(data) < 14 {
		b.WriteString("[|ether]")
		return
	}
	full := data
	et := binary.BigEndian.Uint16(data[12:])
	if d.LinkHeader {
		fmt.Fprintf(b, "%s > %s, ", net.HardwareAddr(data[6:12]), net.HardwareAddr(data[0:6]))
	}
	data, wire = data[14:], wire-14
	if d.LinkHeader {
		if et == 0x8100 || et == 0x88a8 {
			fmt.Fprintf(b, "ethertype %s (0x%04x), length %d: ", etherTypeName(et), et, wire+14)
		} else {
			fmt.Fprintf(b, "ethertype %s (0x%04x), length %d: ", etherTypeName(et), et, wire+14)
		}
	}
	for et == 0x8100 || et == 0x88a8 {
		if len(data) < 4 {
			b.WriteString("[|vlan]")
			return
		}
		tci := binary.BigEndian.Uint16(data)
		et = binary.BigEndian.Uint16(data[2:])
		if d.LinkHeader { // tcpdump shows the tag with -e only
			fmt.Fprintf(b, "vlan %d, p %d, ", tci&0xfff, tci>>13)
			if tci&0x1000 != 0 {
				b.WriteString("DEI, ")
			}
			fmt.Fprintf(b, "ethertype %s (0x%04x), ", etherTypeName(et), et)
		}
		data, wire = data[4:], wire-4
	}
	d.etherPayload(b, et, full, data, wire)
}

// etherPayload decodes the payload of EtherType et; full is the frame
// from its link header on (its addresses, for unknown types).
func (d *lineDecoder) etherPayload(b *strings.Builder, et uint16, full, data []byte, wire int) {
	switch et {
	case 0x0800, 0x86dd:
		d.ip(b, data, wire)
	case 0x0806:
		d.arp(b, data, wire)
	default:
		// tcpdump then dumps the payload in hex on further lines; a
		// bpfcap line stays one line.
		if !d.LinkHeader {
			if len(full) >= 14 {
				fmt.Fprintf(b, "%s > %s, ", net.HardwareAddr(full[6:12]), net.HardwareAddr(full[0:6]))
			}
			fmt.Fprintf(b, "ethertype %s (0x%04x), length %d: ", etherTypeName(et), et, wire+14)
		}
	}
}

// sll decodes a Linux cooked capture (v1) header as tcpdump does without -e.
func (d *lineDecoder) sll(b *strings.Builder, data []byte, wire int) {
	if len(data) < 16 {
		b.WriteString("[|sll]")
		return
	}
	et := binary.BigEndian.Uint16(data[14:])
	if d.LinkHeader {
		dir := map[uint16]string{0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}[binary.BigEndian.Uint16(data)]
		fmt.Fprintf(b, "%-3s ethertype %s (0x%04x), length %d: ", dir, etherTypeName(et), et, wire)
	}
	d.etherPayload(b, et, nil, data[16:], wire-16)
}

func (d *lineDecoder) arp(b *strings.Builder, data []byte, wire int) {
	if !d.LinkHeader {
		b.WriteString("ARP, ")
	}
	if len(data) < 8 {
		b.WriteString("[|ARP]")
		return
	}
	hln, pln := int(data[4]), int(data[5])
	op := binary.BigEndian.Uint16(data[6:])
	if d.Verbose && binary.BigEndian.Uint16(data) == 1 && binary.BigEndian.Uint16(data[2:]) == 0x0800 {
		fmt.Fprintf(b, "Ethernet (len %d), IPv4 (len %d), ", hln, pln)
	}
	if len(data) < 8+2*hln+2*pln || pln != 4 {
		fmt.Fprintf(b, "[|ARP]")
		return
	}
	sha := net.HardwareAddr(data[8 : 8+hln])
	spa := net.IP(data[8+hln : 8+hln+4])
	tha := net.HardwareAddr(data[8+hln+4 : 8+2*hln+4])
	tpa := net.IP(data[8+2*hln+4 : 8+2*hln+8])
	switch op {
	case 1:
		fmt.Fprintf(b, "Request who-has %s", tpa)
		if !isZero(tha) {
			fmt.Fprintf(b, " (%s)", tha)
		}
		fmt.Fprintf(b, " tell %s", spa)
	case 2:
		fmt.Fprintf(b, "Reply %s is-at %s", spa, sha)
	default:
		fmt.Fprintf(b, "Unknown opcode %d", op)
	}
	fmt.Fprintf(b, ", length %d", wire)
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
