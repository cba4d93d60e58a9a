package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

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
