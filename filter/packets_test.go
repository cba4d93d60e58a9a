package filter

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// testPacket is one packet of the differential corpus: the captured bytes
// and the length on the wire (larger when the capture was truncated).
type testPacket struct {
	data    []byte
	wireLen int
	what    string
}

// packetGen builds varied, deterministic packets.
type packetGen struct {
	r *rand.Rand
}

func newPacketGen(seed uint64) *packetGen {
	return &packetGen{r: rand.New(rand.NewPCG(seed, 0x62706663))}
}

func (g *packetGen) pick(n int) int { return g.r.IntN(n) }

func (g *packetGen) chance(p float64) bool { return g.r.Float64() < p }

var (
	testMACs = [][]byte{
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01},
		{0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
		{0x00, 0x11, 0x22, 0x33, 0x44, 0x55},
		{0x02, 0x00, 0x00, 0x00, 0x00, 0x01},
		{0x02, 0x00, 0x00, 0x00, 0x00, 0x02},
	}
	testIPv4 = []string{"10.0.0.1", "10.0.0.2", "192.168.1.1", "192.168.1.255", "224.0.0.1", "239.1.2.3",
		"255.255.255.255", "8.8.8.8", "172.16.5.4", "0.0.0.0", "127.0.0.1", "200.1.2.3"}
	testIPv6  = []string{"fe80::1", "2001:db8::1", "2001:db8::2", "ff02::1", "::1", "ff05::2", "2001:db8:1::80", "::"}
	testPorts = []int{0, 20, 22, 53, 67, 80, 123, 443, 1024, 1999, 2000, 5000, 8080, 32768, 65535}
)

func (g *packetGen) mac() []byte { return testMACs[g.pick(len(testMACs))] }

func (g *packetGen) ip4() []byte {
	if g.chance(0.1) {
		return []byte{byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32()), byte(g.r.Uint32())}
	}
	a := netip.MustParseAddr(testIPv4[g.pick(len(testIPv4))]).As4()
	return a[:]
}

func (g *packetGen) ip6() []byte {
	a := netip.MustParseAddr(testIPv6[g.pick(len(testIPv6))]).As16()
	return a[:]
}

func (g *packetGen) port() int {
	if g.chance(0.15) {
		return g.pick(65536)
	}
	return testPorts[g.pick(len(testPorts))]
}

func (g *packetGen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func be16(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }

// transport returns an L4 header and payload for IP protocol proto.
func (g *packetGen) transport(proto int) []byte {
	payload := g.bytes(g.pick(4) * g.pick(64))
	switch proto {
	case 6: // TCP
		opts := 0
		if g.chance(0.3) {
			opts = 4 * (1 + g.pick(10))
		}
		h := be16(be16(nil, g.port()), g.port())
		h = binary.BigEndian.AppendUint32(h, g.r.Uint32())
		h = binary.BigEndian.AppendUint32(h, g.r.Uint32())
		flags := []int{0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x29, 0xff, 0}[g.pick(11)]
		h = append(h, byte((5+opts/4)<<4), byte(flags))
		h = be16(be16(be16(h, g.pick(65536)), 0), 0)
		h = append(h, g.bytes(opts)...)
		return append(h, payload...)
	case 17, 132: // UDP, SCTP: ports first
		h := be16(be16(nil, g.port()), g.port())
		h = be16(be16(h, 8+len(payload)), 0)
		if proto == 132 {
			h = append(h, g.bytes(4)...)
		}
		return append(h, payload...)
	case 1, 58: // ICMP, ICMPv6
		types := []int{0, 3, 8, 11, 128, 129, 133, 135, 136, 5}
		return append([]byte{byte(types[g.pick(len(types))]), byte(g.pick(4)), 0, 0, 1, 2, 3, 4}, payload...)
	case 2: // IGMP
		return []byte{0x16, 0, 0, 0, 224, 0, 0, 1}
	case 51: // AH: next header TCP or UDP
		next := []int{6, 17, 1}[g.pick(3)]
		h := []byte{byte(next), 4, 0, 0}
		h = append(h, g.bytes(20)...)
		return append(h, g.transport(next)...)
	case 47: // GRE
		return append([]byte{0, 0, 0x08, 0x00}, payload...)
	}
	return payload
}

// ipv4 returns an IPv4 packet, sometimes with options, fragments, bad
// header lengths or AH.
func (g *packetGen) ipv4() []byte {
	protos := []int{6, 6, 6, 17, 17, 1, 2, 47, 51, 132, 89, 255}
	proto := protos[g.pick(len(protos))]
	opts := 0
	if g.chance(0.2) {
		opts = 4 * (1 + g.pick(10))
	}
	body := g.transport(proto)
	ihl := 5 + opts/4
	if g.chance(0.03) {
		ihl = g.pick(16) // bogus header length
	}
	h := []byte{byte(0x40 | ihl), byte(g.pick(256))}
	total := 20 + opts + len(body)
	if g.chance(0.05) {
		total = g.pick(65536)
	}
	h = be16(h, total)
	h = be16(h, g.pick(65536))
	frag := 0
	switch g.pick(10) {
	case 0:
		frag = 0x2000 // MF
	case 1:
		frag = 0x2000 | (1 + g.pick(0x1fff))
	case 2:
		frag = 1 + g.pick(0x1fff)
	case 3:
		frag = 0x4000 // DF
	}
	h = be16(h, frag)
	h = append(h, byte(g.pick(256)), byte(proto), 0, 0)
	h = append(h, g.ip4()...)
	h = append(h, g.ip4()...)
	h = append(h, g.bytes(opts)...)
	return append(h, body...)
}

// ipv6 returns an IPv6 packet, sometimes with a chain of extension headers.
func (g *packetGen) ipv6() []byte {
	protos := []int{6, 6, 17, 17, 58, 58, 132, 51, 59, 47}
	final := protos[g.pick(len(protos))]
	var types []int
	if g.chance(0.35) {
		n := 1 + g.pick(5)
		for i := 0; i < n; i++ {
			t := []int{0, 43, 44, 60, 51}[g.pick(5)]
			types = append(types, t)
		}
	}
	body := g.transport(final)
	next := final
	for i := len(types) - 1; i >= 0; i-- {
		var h []byte
		switch types[i] {
		case 44: // fragment: fixed 8 bytes
			off := 0
			if g.chance(0.5) {
				off = g.pick(0x2000) << 3
			}
			h = []byte{byte(next), 0}
			h = be16(h, off|g.pick(2))
			h = append(h, g.bytes(4)...)
		case 51: // AH: length in 4-byte units minus 2
			h = []byte{byte(next), 4}
			h = append(h, g.bytes(22)...)
		default:
			l := g.pick(3)
			h = []byte{byte(next), byte(l)}
			h = append(h, g.bytes(6+8*l)...)
		}
		next = types[i]
		body = append(h, body...)
	}
	h := []byte{0x60 | byte(g.pick(16)), byte(g.pick(256)), byte(g.pick(256)), byte(g.pick(256))}
	h = be16(h, len(body))
	h = append(h, byte(next), byte(g.pick(256)))
	h = append(h, g.ip6()...)
	h = append(h, g.ip6()...)
	return append(h, body...)
}

func (g *packetGen) arp() []byte {
	op := 1 + g.pick(4) // request, reply, rarp request, rarp reply
	h := []byte{0, 1, 8, 0, 6, 4, 0, byte(op)}
	h = append(h, g.mac()...)
	h = append(h, g.ip4()...)
	h = append(h, g.mac()...)
	h = append(h, g.ip4()...)
	return h
}

// l3 returns an ethertype and network-layer packet.
func (g *packetGen) l3() (int, []byte) {
	switch n := g.pick(20); {
	case n < 9:
		return 0x0800, g.ipv4()
	case n < 15:
		return 0x86dd, g.ipv6()
	case n < 16:
		if g.chance(0.5) {
			return 0x8035, g.arp()
		}
		return 0x0806, g.arp()
	case n < 17:
		types := []int{0x88cc, 0x8863, 0x8864, 0x6003, 0x809b, 0x8137, 0x88f7, 0x0842}
		return types[g.pick(len(types))], g.bytes(20 + g.pick(80))
	case n < 18:
		// 802.3 length field with LLC (STP, IPX, NetBEUI, ISO).
		llc := [][]byte{{0x42, 0x42, 0x03}, {0xe0, 0xe0, 0x03}, {0xf0, 0xf0, 0x03}, {0xfe, 0xfe, 0x03}, {0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00}}
		b := append(append([]byte{}, llc[g.pick(len(llc))]...), g.bytes(30+g.pick(60))...)
		return len(b), b
	default:
		return g.pick(65536), g.bytes(g.pick(100))
	}
}

// ethernet returns a frame, with VLAN (802.1Q, QinQ) and MPLS stacks.
func (g *packetGen) ethernet() []byte {
	et, payload := g.l3()
	if g.chance(0.12) && (et == 0x0800 || et == 0x86dd) {
		// MPLS stack of 1-3 labels ending in bottom-of-stack.
		n := 1 + g.pick(3)
		var stack []byte
		for i := 0; i < n; i++ {
			label := []int{16, 100, 200, 1000, 3}[g.pick(5)]
			if g.chance(0.2) {
				label = g.pick(1 << 20)
			}
			v := uint32(label)<<12 | uint32(g.pick(8))<<9 | uint32(g.pick(256))
			if i == n-1 {
				v |= 1 << 8
			}
			stack = binary.BigEndian.AppendUint32(stack, v)
		}
		payload = append(stack, payload...)
		et = 0x8847
	}
	if g.chance(0.2) {
		n := 1 + g.pick(3)
		for i := 0; i < n; i++ {
			vid := []int{1, 10, 20, 100, 4095, 0}[g.pick(6)]
			tag := be16(nil, g.pick(8)<<13|vid)
			tag = be16(tag, et)
			payload = append(tag, payload...)
			et = 0x8100
			if i > 0 && g.chance(0.5) {
				et = 0x88a8
			}
		}
	}
	f := append(append([]byte{}, g.mac()...), g.mac()...)
	f = be16(f, et)
	return append(f, payload...)
}

// finish truncates some packets: runts (the frame itself is short) and
// short captures (caplen < wire length).
func (g *packetGen) finish(b []byte, what string) testPacket {
	wire := len(b)
	switch n := g.pick(100); {
	case n < 6 && len(b) > 0:
		b = b[:g.pick(len(b))] // runt: wire length is the short length
		wire = len(b)
	case n < 14 && len(b) > 0:
		b = b[:g.pick(len(b))] // snapped capture
	case n < 16:
		b = append(b, g.bytes(g.pick(1400))...) // padding or trailer
		wire = len(b)
	}
	if len(b) > MaxDirectTestPacket {
		b = b[:MaxDirectTestPacket]
	}
	return testPacket{data: b, wireLen: wire, what: what}
}

// ethernetCorpus returns n Ethernet frames.
func ethernetCorpus(n int) []testPacket {
	g := newPacketGen(1)
	out := make([]testPacket, 0, n)
	for len(out) < n {
		out = append(out, g.finish(g.ethernet(), "eth"))
	}
	return out
}

// rawCorpus returns n raw IP packets (DLT_RAW), a few of them not IP.
func rawCorpus(n int) []testPacket {
	g := newPacketGen(2)
	out := make([]testPacket, 0, n)
	for len(out) < n {
		var b []byte
		switch k := g.pick(20); {
		case k < 11:
			b = g.ipv4()
		case k < 19:
			b = g.ipv6()
		default:
			b = g.bytes(g.pick(80))
		}
		out = append(out, g.finish(b, "raw"))
	}
	return out
}
