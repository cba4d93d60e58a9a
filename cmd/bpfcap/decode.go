package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
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

type tcpFlow struct {
	src, dst     netip.Addr
	sport, dport uint16
}

type tcpBase struct{ seq, ack uint32 }

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

// ip decodes an IPv4 or IPv6 packet.
func (d *lineDecoder) ip(b *strings.Builder, data []byte, wire int) {
	if len(data) < 1 {
		b.WriteString("IP  [|ip]")
		return
	}
	switch data[0] >> 4 {
	case 4:
		d.ip4(b, data)
	case 6:
		d.ip6(b, data)
	default:
		fmt.Fprintf(b, "IP%d", data[0]>>4)
	}
}

func (d *lineDecoder) ip4(b *strings.Builder, data []byte) {
	if !d.LinkHeader {
		b.WriteString("IP ")
	}
	if len(data) < 20 {
		b.WriteString(" [|ip]")
		return
	}
	ihl := int(data[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(data[2:]))
	off := binary.BigEndian.Uint16(data[6:])
	proto := data[9]
	src, _ := netip.AddrFromSlice(data[12:16])
	dst, _ := netip.AddrFromSlice(data[16:20])
	if ihl < 20 || total < ihl {
		fmt.Fprintf(b, "%s > %s: [|ip]", src, dst)
		return
	}
	payload := data[min(ihl, len(data)):min(total, len(data))]
	if d.Verbose {
		d.ip4Header(b, data, ihl, total, off, proto)
	}
	if off&0x1fff != 0 {
		// Not the first fragment: tcpdump names the protocol only.
		fmt.Fprintf(b, "%s > %s: ip-proto-%d", src, dst, proto)
		return
	}
	d.transport(b, proto, src, dst, payload, total-ihl)
}

func (d *lineDecoder) ip6(b *strings.Builder, data []byte) {
	if !d.LinkHeader {
		b.WriteString("IP6 ")
	}
	if len(data) < 40 {
		b.WriteString(" [|ip6]")
		return
	}
	plen := int(binary.BigEndian.Uint16(data[4:]))
	src, _ := netip.AddrFromSlice(data[8:24])
	dst, _ := netip.AddrFromSlice(data[24:40])
	payload := data[40:min(40+plen, len(data))]
	if d.Verbose {
		flow := binary.BigEndian.Uint32(data)
		b.WriteString("(")
		if flow&0x0ff00000 != 0 {
			fmt.Fprintf(b, "class 0x%02x, ", flow>>20&0xff)
		}
		if flow&0x000fffff != 0 {
			fmt.Fprintf(b, "flowlabel 0x%05x, ", flow&0xfffff)
		}
		fmt.Fprintf(b, "hlim %d, next-header %s (%d) payload length: %d) ", data[7], ipProtoUpper(data[6]), data[6], plen)
	}
	d.transport(b, data[6], src, dst, payload, plen)
}

// transport decodes the IP payload; length is its length per the IP header.
func (d *lineDecoder) transport(b *strings.Builder, proto byte, src, dst netip.Addr, data []byte, length int) {
	switch proto {
	case 6:
		d.tcpSeg(b, src, dst, data, length)
	case 17:
		if len(data) < 8 {
			fmt.Fprintf(b, "%s > %s: [|udp]", src, dst)
			return
		}
		ulen := int(binary.BigEndian.Uint16(data[4:]))
		fmt.Fprintf(b, "%s.%d > %s.%d: ", src, binary.BigEndian.Uint16(data), dst, binary.BigEndian.Uint16(data[2:]))
		if d.Verbose && !d.NoChecksums && src.Is6() && len(data) >= ulen && ulen >= 8 {
			// tcpdump checks UDP sums with -v on IPv6 only (-vv on IPv4).
			if transportSum(src, dst, 17, data[:ulen]) == 0 {
				b.WriteString("[udp sum ok] ")
			} else {
				fmt.Fprintf(b, "[bad udp cksum 0x%04x -> 0x%04x!] ", binary.BigEndian.Uint16(data[6:]), correctSum(src, dst, 17, data[:ulen], 6))
			}
		}
		fmt.Fprintf(b, "UDP, length %d", ulen-8)
	case 1:
		fmt.Fprintf(b, "%s > %s: ICMP ", src, dst)
		icmp4(b, data, length)
		if d.Verbose && len(data) >= 8+20 && (data[0] == 3 || data[0] == 11) {
			// tcpdump -v decodes the packet an ICMP error quotes.
			b.WriteString("\n\t")
			inner := &lineDecoder{Verbose: true, Absolute: true, LinkHeader: d.LinkHeader, NoChecksums: d.NoChecksums}
			inner.ip4(b, data[8:])
		}
	case 58:
		fmt.Fprintf(b, "%s > %s: ", src, dst)
		// tcpdump checks ICMPv6 sums with -v even under -K.
		if d.Verbose && len(data) >= length {
			if transportSum(src, dst, 58, data[:length]) == 0 {
				b.WriteString("[icmp6 sum ok] ")
			} else {
				b.WriteString("[bad icmp6 cksum] ")
			}
		}
		b.WriteString("ICMP6, ")
		icmp6(b, data, length, !d.Verbose)
	default:
		fmt.Fprintf(b, "%s > %s: %s, length %d", src, dst, ipProtoName(proto), length)
	}
}

func ipProtoName(p byte) string {
	switch p {
	case 1:
		return "ICMP"
	case 2:
		return "IGMP"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 47:
		return "GREv0"
	case 50:
		return "ESP"
	case 58:
		return "ICMP6"
	case 132:
		return "sctp"
	}
	return fmt.Sprintf("ip-proto-%d", p)
}

var tcpFlagChars = []struct {
	bit byte
	c   byte
}{{0x01, 'F'}, {0x02, 'S'}, {0x04, 'R'}, {0x08, 'P'}, {0x10, '.'}, {0x20, 'U'}, {0x40, 'E'}, {0x80, 'W'}}

func (d *lineDecoder) tcpSeg(b *strings.Builder, src, dst netip.Addr, data []byte, length int) {
	if len(data) < 20 {
		// tcpdump names the ports when it has them.
		if len(data) >= 4 {
			fmt.Fprintf(b, "%s.%d > %s.%d:  [|tcp]", src, binary.BigEndian.Uint16(data), dst, binary.BigEndian.Uint16(data[2:]))
		} else {
			fmt.Fprintf(b, "%s > %s:  [|tcp]", src, dst)
		}
		return
	}
	sport, dport := binary.BigEndian.Uint16(data), binary.BigEndian.Uint16(data[2:])
	seq, ack := binary.BigEndian.Uint32(data[4:]), binary.BigEndian.Uint32(data[8:])
	hlen := int(data[12]>>4) * 4
	flags := data[13]
	win := binary.BigEndian.Uint16(data[14:])
	urp := binary.BigEndian.Uint16(data[18:])
	fmt.Fprintf(b, "%s.%d > %s.%d: Flags [", src, sport, dst, dport)
	n := 0
	for _, f := range tcpFlagChars {
		if flags&f.bit != 0 {
			b.WriteByte(f.c)
			n++
		}
	}
	if n == 0 {
		b.WriteString("none")
	}
	b.WriteString("]")
	if hlen < 20 {
		fmt.Fprintf(b, ", bad hdr length %d - too short, < 20", hlen)
		return
	}
	if d.Verbose && !d.NoChecksums && len(data) >= length {
		ck := binary.BigEndian.Uint16(data[16:])
		if transportSum(src, dst, 6, data[:length]) == 0 {
			fmt.Fprintf(b, ", cksum 0x%04x (correct)", ck)
		} else {
			fmt.Fprintf(b, ", cksum 0x%04x (incorrect -> 0x%04x)", ck, correctSum(src, dst, 6, data[:length], 16))
		}
	}
	plen := length - hlen
	var ackBase uint32 // subtracted from acks and SACK blocks
	if !d.Absolute && flags&0x10 != 0 {
		abs := ack
		seq, ack = d.relative(src, dst, sport, dport, seq, ack)
		ackBase = abs - ack
	}
	if plen > 0 || flags&0x07 != 0 {
		fmt.Fprintf(b, ", seq %d", seq)
		if plen > 0 {
			fmt.Fprintf(b, ":%d", seq+uint32(plen))
		}
	}
	if flags&0x10 != 0 {
		fmt.Fprintf(b, ", ack %d", ack)
	}
	fmt.Fprintf(b, ", win %d", win)
	if flags&0x20 != 0 {
		fmt.Fprintf(b, ", urg %d", urp)
	}
	if hlen > 20 {
		if len(data) < hlen {
			b.WriteString(", options [|tcp]")
			return
		}
		b.WriteString(", options [")
		tcpOptions(b, data[20:hlen], ackBase)
		b.WriteString("]")
	}
	fmt.Fprintf(b, ", length %d", plen)
}

// relative applies tcpdump's relative sequence numbers: the first ACK
// segment of a connection sets the base (and prints absolute numbers),
// later ones in either direction print the offset from it.
func (d *lineDecoder) relative(src, dst netip.Addr, sport, dport uint16, seq, ack uint32) (uint32, uint32) {
	if d.tcp == nil {
		d.tcp = map[tcpFlow]tcpBase{}
	}
	fwd := tcpFlow{src, dst, sport, dport}
	rev := tcpFlow{dst, src, dport, sport}
	if base, ok := d.tcp[fwd]; ok {
		return seq - base.seq, ack - base.ack
	}
	if base, ok := d.tcp[rev]; ok {
		return seq - base.ack, ack - base.seq
	}
	if len(d.tcp) >= 4096 {
		clear(d.tcp)
	}
	d.tcp[fwd] = tcpBase{seq: seq, ack: ack - 1}
	return seq, ack
}

// tcpOptions words TCP options as tcpdump does; SACK blocks are
// printed relative to ackBase.
func tcpOptions(b *strings.Builder, o []byte, ackBase uint32) {
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	for len(o) > 0 {
		kind := o[0]
		if kind == 0 {
			sep()
			b.WriteString("eol")
			return
		}
		if kind == 1 {
			sep()
			b.WriteString("nop")
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			sep()
			b.WriteString("[|tcp]")
			return
		}
		l := int(o[1])
		v := o[2:l]
		sep()
		switch {
		case kind == 2 && l == 4:
			fmt.Fprintf(b, "mss %d", binary.BigEndian.Uint16(v))
		case kind == 3 && l == 3:
			fmt.Fprintf(b, "wscale %d", v[0])
		case kind == 4 && l == 2:
			b.WriteString("sackOK")
		case kind == 5 && (l-2)%8 == 0:
			fmt.Fprintf(b, "sack %d ", (l-2)/8)
			for i := 0; i+8 <= len(v); i += 8 {
				fmt.Fprintf(b, "{%d:%d}", binary.BigEndian.Uint32(v[i:])-ackBase, binary.BigEndian.Uint32(v[i+4:])-ackBase)
			}
		case kind == 8 && l == 10:
			fmt.Fprintf(b, "TS val %d ecr %d", binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]))
		default:
			fmt.Fprintf(b, "unknown-%d", kind)
			if len(v) > 0 {
				fmt.Fprintf(b, " 0x%x", v)
			}
		}
		o = o[l:]
	}
}

var icmp4Unreach = map[byte]string{
	0: "net %s unreachable", 1: "host %s unreachable", 2: "%s protocol %d unreachable", 3: "%s %s port %d unreachable",
	4: "%s unreachable - need to frag (mtu %d)", 9: "net %s unreachable - admin prohibited", 10: "host %s unreachable - admin prohibited",
	13: "%s unreachable - admin prohibited filter",
}

func icmp4(b *strings.Builder, data []byte, length int) {
	if len(data) < 4 {
		b.WriteString("[|icmp]")
		return
	}
	typ, code := data[0], data[1]
	switch typ {
	case 0, 8:
		name := "echo reply"
		if typ == 8 {
			name = "echo request"
		}
		if len(data) < 8 {
			fmt.Fprintf(b, "%s, [|icmp]", name)
			return
		}
		fmt.Fprintf(b, "%s, id %d, seq %d", name, binary.BigEndian.Uint16(data[4:]), binary.BigEndian.Uint16(data[6:]))
	case 3:
		b.WriteString(icmpUnreach(data, code))
	case 11:
		if code == 0 {
			b.WriteString("time exceeded in-transit")
		} else {
			b.WriteString("ip reassembly time exceeded")
		}
	default:
		fmt.Fprintf(b, "type-#%d", typ)
	}
	fmt.Fprintf(b, ", length %d", length)
}

// icmpUnreach words a destination unreachable from its quoted header.
func icmpUnreach(data []byte, code byte) string {
	inner := data[8:]
	if len(inner) < 20 || inner[0]>>4 != 4 {
		return fmt.Sprintf("unreachable code %d", code)
	}
	ihl := int(inner[0]&0xf) * 4
	dst, _ := netip.AddrFromSlice(inner[16:20])
	proto := inner[9]
	switch code {
	case 2:
		return fmt.Sprintf("%s protocol %d unreachable", dst, proto)
	case 3:
		if len(inner) < ihl+4 {
			return fmt.Sprintf("%s port unreachable", dst)
		}
		return fmt.Sprintf("%s %s port %d unreachable", dst, ipProtoName(proto), binary.BigEndian.Uint16(inner[ihl+2:]))
	case 4:
		return fmt.Sprintf("%s unreachable - need to frag (mtu %d)", dst, binary.BigEndian.Uint16(data[6:]))
	}
	if f, ok := icmp4Unreach[code]; ok && strings.Count(f, "%") == 1 {
		return fmt.Sprintf(f, dst)
	}
	return fmt.Sprintf("%s unreachable code %d", dst, code)
}

// icmp6 words an ICMPv6 message; tcpdump -v leaves its length out.
func icmp6(b *strings.Builder, data []byte, length int, withLength bool) {
	if len(data) < 4 {
		b.WriteString("[|icmp6]")
		return
	}
	typ := data[0]
	switch typ {
	case 128, 129:
		name := "echo request"
		if typ == 129 {
			name = "echo reply"
		}
		if len(data) < 8 {
			fmt.Fprintf(b, "%s, [|icmp6]", name)
			return
		}
		fmt.Fprintf(b, "%s, id %d, seq %d", name, binary.BigEndian.Uint16(data[4:]), binary.BigEndian.Uint16(data[6:]))
	case 1:
		b.WriteString("destination unreachable")
	case 3:
		b.WriteString("time exceeded in-transit")
	case 133:
		b.WriteString("router solicitation")
	case 134:
		b.WriteString("router advertisement")
	case 135:
		if len(data) >= 24 {
			t, _ := netip.AddrFromSlice(data[8:24])
			fmt.Fprintf(b, "neighbor solicitation, who has %s", t)
		} else {
			b.WriteString("neighbor solicitation")
		}
	case 136:
		if len(data) >= 24 {
			t, _ := netip.AddrFromSlice(data[8:24])
			fmt.Fprintf(b, "neighbor advertisement, tgt is %s", t)
		} else {
			b.WriteString("neighbor advertisement")
		}
	default:
		fmt.Fprintf(b, "type-#%d", typ)
	}
	if withLength {
		fmt.Fprintf(b, ", length %d", length)
	}
}

// ip4Header writes tcpdump -v's IPv4 header part: "(tos 0x0, ttl 64, id
// 1, offset 0, flags [DF], proto UDP (17), length 33)" and the line
// break before the addresses.
func (d *lineDecoder) ip4Header(b *strings.Builder, data []byte, ihl, total int, off uint16, proto byte) {
	var flags string
	if off&0x2000 != 0 {
		flags += "+"
	}
	if off&0x4000 != 0 {
		flags += "DF"
	}
	if off&0x8000 != 0 {
		flags += "rsvd"
	}
	if flags == "" {
		flags = "none"
	}
	fmt.Fprintf(b, "(tos 0x%x, ttl %d, id %d, offset %d, flags [%s], proto %s (%d), length %d",
		data[1], data[8], binary.BigEndian.Uint16(data[4:]), int(off&0x1fff)*8, flags, ipProtoUpper(proto), proto, total)
	if ihl > 20 && len(data) >= ihl {
		b.WriteString(", options (")
		ip4Options(b, data[20:ihl])
		b.WriteString(")")
	}
	if !d.NoChecksums && len(data) >= ihl {
		if sum := ipSum(data[:ihl]); sum != 0 {
			have := binary.BigEndian.Uint16(data[10:])
			hdr := append([]byte(nil), data[:ihl]...)
			hdr[10], hdr[11] = 0, 0
			fmt.Fprintf(b, ", bad cksum %x (->%x)!", have, ipSum(hdr))
		}
	}
	b.WriteString(")\n    ")
}

// ip4Options words IPv4 options as tcpdump -v does (NOP, EOL, RR/LSRR/SSRR).
func ip4Options(b *strings.Builder, o []byte) {
	first := true
	for len(o) > 0 {
		if !first {
			b.WriteByte(',')
		}
		first = false
		switch o[0] {
		case 0:
			b.WriteString("EOL")
			o = o[1:]
			continue
		case 1:
			b.WriteString("NOP")
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			b.WriteString("[|ip]")
			return
		}
		l := int(o[1])
		switch o[0] {
		case 7, 131, 137:
			name := map[byte]string{7: "RR", 131: "LSRR", 137: "SSRR"}[o[0]]
			b.WriteString(name)
			for i := 3; i+4 <= l; i += 4 {
				a, _ := netip.AddrFromSlice(o[i : i+4])
				fmt.Fprintf(b, " %s", a)
			}
		default:
			fmt.Fprintf(b, "unknown %d", o[0])
		}
		o = o[l:]
	}
}

// ipProtoUpper names an IP protocol as tcpdump -v does ("UDP", "ICMPv6").
func ipProtoUpper(p byte) string {
	switch p {
	case 1:
		return "ICMP"
	case 2:
		return "IGMP"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 41:
		return "IPv6"
	case 47:
		return "GRE"
	case 50:
		return "ESP"
	case 58:
		return "ICMPv6"
	case 132:
		return "SCTP"
	}
	return "unknown"
}

// ipSum is the Internet checksum of hdr: 0 when hdr's own is right.
func ipSum(hdr []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		sum += uint32(hdr[i])<<8 | uint32(hdr[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// transportSum is the ones' complement sum of seg with the pseudo-header
// of src, dst and proto: 0 when seg's checksum is right.
func transportSum(src, dst netip.Addr, proto byte, seg []byte) uint16 {
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	s, d := src.AsSlice(), dst.AsSlice()
	add(s)
	add(d)
	sum += uint32(proto) + uint32(len(seg))
	add(seg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// correctSum is the checksum seg should carry at offset at.
func correctSum(src, dst netip.Addr, proto byte, seg []byte, at int) uint16 {
	c := append([]byte(nil), seg...)
	c[at], c[at+1] = 0, 0
	return transportSum(src, dst, proto, c)
}
