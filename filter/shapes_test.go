package filter

import (
	"encoding/binary"
	"fmt"
)

// Shapes of real captures that the random corpus does not reach (issue
// 13): IPv6 extension chains longer than the unrolled protochain loop,
// packets longer than any kernel test program takes, records whose
// captured length exceeds the wire length, and 802.11 with a radiotap
// header (where libpcap's `geneve` reads a scratch cell that is not
// written on every path). Generated here, deterministically.

// ipv6Chain returns an IPv6 packet whose payload of protocol final (a
// transport header from g) follows n 8-byte extension headers: a
// hop-by-hop header first, then destination options and routing headers.
func (g *packetGen) ipv6Chain(n, final int) []byte {
	body := g.transport(final)
	next := final
	for i := n - 1; i >= 0; i-- {
		typ := []int{60, 43}[i%2]
		if i == 0 {
			typ = 0
		}
		h := append([]byte{byte(next), 0}, g.bytes(6)...)
		next = typ
		body = append(h, body...)
	}
	h := []byte{0x60, 0, 0, 0}
	h = be16(h, len(body))
	h = append(h, byte(next), 64)
	h = append(h, g.ip6()...)
	h = append(h, g.ip6()...)
	return append(h, body...)
}

// bigTCP returns an Ethernet IPv4 TCP frame of size bytes: the payload is
// a fill byte and the IPv4 total length is 0 beyond 65535, as Linux BIG
// TCP writes it.
func (g *packetGen) bigTCP(size int, fill byte) []byte {
	f := append(append([]byte{}, g.mac()...), g.mac()...)
	f = be16(f, 0x0800)
	ipLen := size - 14
	if ipLen > 0xffff {
		ipLen = 0
	}
	ip := []byte{0x45, 0}
	ip = be16(ip, ipLen)
	ip = append(ip, 0, 1, 0x40, 0, 64, 6, 0, 0)
	ip = append(ip, g.ip4()...)
	ip = append(ip, g.ip4()...)
	tcp := be16(be16(nil, 443), g.port())
	tcp = binary.BigEndian.AppendUint32(tcp, 1)
	tcp = binary.BigEndian.AppendUint32(tcp, 2)
	tcp = append(tcp, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0)
	f = append(append(f, ip...), tcp...)
	for len(f) < size {
		f = append(f, fill)
	}
	return f[:size]
}

// shapesCorpus returns Ethernet packets of the shapes above.
func shapesCorpus() []testPacket {
	g := newPacketGen(13)
	var out []testPacket
	eth := func(payload []byte) []byte {
		f := append(append([]byte{}, g.mac()...), g.mac()...)
		return append(be16(f, 0x86dd), payload...)
	}
	for _, n := range []int{0, 1, 5, MaxBackwardJumps - 1, MaxBackwardJumps, MaxBackwardJumps + 1, MaxBackwardJumps + 2, 20, 50, 100, 120, 300} {
		for _, final := range []int{6, 17, 58} {
			b := eth(g.ipv6Chain(n, final))
			out = append(out, testPacket{data: b, wireLen: len(b), what: fmt.Sprintf("ipv6, %d extension headers, then %d", n, final)})
		}
		// Cut inside the chain: the walk runs off the capture.
		b := eth(g.ipv6Chain(n, 17))
		cut := b[:14+40+8*n/2]
		out = append(out, testPacket{data: cut, wireLen: len(b), what: fmt.Sprintf("ipv6, %d extension headers, captured up to the middle", n)})
	}
	for _, size := range []int{MaxDirectTestPacket + 1, TestScratchSize, TestScratchSize + 1, 40000, 65535, 70000, 73136, 73137, 100000, 200000, 262144} {
		for _, fill := range []byte{0, 0x5a} {
			b := g.bigTCP(size, fill)
			out = append(out, testPacket{data: b, wireLen: len(b), what: fmt.Sprintf("tcp, %d bytes of %#x", size, fill)})
		}
		// Captured short of the wire length.
		b := g.bigTCP(size, 0x5a)
		out = append(out, testPacket{data: b[:size-1000], wireLen: size, what: fmt.Sprintf("tcp, %d bytes, last 1000 not captured", size)})
	}
	// Captured length larger than the wire length (some writers do
	// this; libpcap reads them as they are: loads see the captured
	// bytes, `len` is the wire length).
	for i := 0; i < 40; i++ {
		b := g.ethernet()
		for _, wire := range []int{len(b) - 1, len(b) / 2, 14, 0} {
			if wire >= 0 && wire < len(b) {
				out = append(out, testPacket{data: b, wireLen: wire, what: fmt.Sprintf("caplen %d > wire length %d", len(b), wire)})
			}
		}
	}
	return out
}

// shapesFilters are the filters the differences came from, and
// some that load far into long packets.
var shapesFilters = []string{
	"ip6 protochain 17", "ip6 protochain 6", "ip6 protochain 6 or len > 0", "protochain 58",
	"not ip6 protochain 17", "ip6 protochain 60", "ip6 protochain 17 and udp",
	"ether[len - 1 : 1] = 0", "ether[len - 1 : 1] = 0x5a", "ether[100000] = 0x5a", "ether[40000:4] = 0x5a5a5a5a",
	"ether[262143] = 0x5a", "ether[32768] = 0", "ether[32767:2] = 0x5a5a", "len > 70000", "len < 100", "greater 40000",
	"tcp[20] = 0x5a", "ip[2:2] = 0", "tcp and ether[73136] != 0", "udp port 53", "len <= 14", "ether[60:4] != 0 and len < 40",
	"tcp port 443 and tcp[tcpflags] & tcp-push != 0",
}

// radiotapCorpus returns 802.11 frames with a radiotap header (DLT
// IEEE802_11_RADIO): data frames carrying LLC/SNAP IPv4 UDP, some of it
// Geneve (port 6081) with an inner Ethernet frame, and some management
// and control frames.
func radiotapCorpus() []testPacket {
	g := newPacketGen(127)
	var out []testPacket
	for i := 0; i < 300; i++ {
		rt := []byte{0, 0, 8, 0, 0, 0, 0, 0}
		if g.chance(0.3) {
			// A longer radiotap header: flags and rate present.
			rt = []byte{0, 0, 10, 0, 0x06, 0, 0, 0, byte(g.pick(2)) << 4, 2}
		}
		fc := []byte{0x08, byte(g.pick(4))} // data, ToDS/FromDS varies
		switch g.pick(10) {
		case 0:
			fc[0] = 0x80 // beacon
		case 1:
			fc[0] = 0xd4 // ACK
		case 2:
			fc[0] = 0x88 // QoS data
		}
		w := append(append([]byte{}, rt...), fc...)
		w = append(w, 0, 0)
		for j := 0; j < 3; j++ {
			w = append(w, g.mac()...)
		}
		w = append(w, 0, 0)
		if fc[0] == 0x88 {
			w = append(w, 0, 0)
		}
		udp := be16(nil, g.port())
		dport := g.port()
		if g.chance(0.5) {
			dport = 6081
		}
		udp = be16(udp, dport)
		var payload []byte
		if dport == 6081 {
			payload = []byte{byte(g.pick(4)), 0, 0x65, 0x58, 0, 0, byte(g.pick(256)), 0}
			inner := append(append([]byte{}, g.mac()...), g.mac()...)
			inner = be16(inner, 0x0800)
			inner = append(inner, g.ipv4()...)
			payload = append(payload, inner...)
		} else {
			payload = g.bytes(g.pick(64))
		}
		udp = be16(be16(udp, 8+len(payload)), 0)
		ip := []byte{0x45, 0}
		ip = be16(ip, 20+len(udp)+len(payload))
		ip = append(ip, 0, 1, 0, 0, 64, 17, 0, 0)
		ip = append(ip, g.ip4()...)
		ip = append(ip, g.ip4()...)
		w = append(w, 0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0)
		w = append(append(append(w, ip...), udp...), payload...)
		out = append(out, g.finish(w, "radiotap"))
	}
	return out
}

// radiotapFilters run on radiotapCorpus.
var radiotapFilters = []string{
	"geneve", "geneve and ip", "geneve 5", "geneve and udp", "udp port 6081", "wlan type data", "ip and udp", "not geneve",
	"wlan type mgt subtype beacon", "ether host 00:11:22:33:44:55", "geneve or ip6", "geneve and not udp port 6081",
}
