package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

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
