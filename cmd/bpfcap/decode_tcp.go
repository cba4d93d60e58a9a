package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

type tcpFlow struct {
	src, dst     netip.Addr
	sport, dport uint16
}

type tcpBase struct{ seq, ack uint32 }

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
