package filter

import (
	"fmt"
	"math/rand/v2"
)

// handFilters are hard cases picked by hand: loops, stacks, arithmetic
// with division and shifts by X, immediates with bit 31 set, big offsets.
var handFilters = []string{
	"",
	"ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "igmp", "sctp",
	"ip proto 47", "ip6 proto 58", "ip6 proto 44", "ether proto 0x88cc", "ip proto \\tcp",
	"ip protochain 6", "ip protochain 17", "ip6 protochain 6", "ip6 protochain 17", "ip6 protochain 58",
	"protochain 6", "protochain 51", "ip6 protochain 44", "protochain 6 and protochain 6",
	"ip6 protochain 6 or ip6 protochain 17", "not ip6 protochain 59",
	"vlan", "vlan 10", "vlan 100 and ip", "vlan and vlan", "vlan 10 and vlan 20 and tcp",
	"vlan and vlan and udp port 53", "vlan and vlan and vlan", "vlan 4095", "vlan and ip6 and tcp",
	"mpls", "mpls 16", "mpls and ip", "mpls 100 and mpls 200 and ip", "mpls and mpls and ip6",
	"mpls and ip host 10.0.0.1", "vlan and mpls and tcp", "vlan and mpls 100", "mpls 1000 and udp",
	"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
	"tcp[tcpflags] & (tcp-fin|tcp-rst) != 0", "tcp[13] = 18", "tcp[tcpflags] = tcp-push|tcp-ack",
	"icmp[icmptype] = icmp-echo", "icmp[icmptype] != icmp-echoreply", "icmp6[icmp6type] = icmp6-echo",
	"ip[6:2] & 0x1fff != 0", "ip[6:2] & 0x2000 != 0", "ip[0] & 0xf > 5", "ip[0] & 0xf != 5",
	"ip[2:2] > 100", "ip[8] < 64", "ip[1] & 0xfc = 0xb8",
	"tcp[0:2] / 3 = 26", "udp[4:2] % 7 = 3", "(ip[2:2] - ((ip[0]&0xf)<<2)) > 40",
	"ip[2:2] / (ip[0] & 0xf) > 10", "tcp[0:2] % (tcp[2:2] & 7) = 1", "tcp[0:2] / (tcp[13] & 3) > 100",
	"udp[0:2] % (udp[2:2] & 0xff) = 0", "len - 14 > ip[2:2]", "ip[1] * 4 > 100", "(ip[2:2] >> 2) & 3 = 1",
	"ip[3] << 2 > 200", "ip[8] ^ 0xff = 0xc0", "-ip[8] > 100", "ip[2:2] >> (ip[0] & 0xf) > 10",
	"tcp[0:4] << (tcp[13] & 0x3f) != 0", "tcp[4:4] >> (tcp[12] & 0x3f) = 0", "ip[0] << 33 = 0",
	"ether[0:4] = 0xffffffff", "ether[6:4] > 0x80000000", "ether[0:4] & 0x80000000 != 0",
	"ip[12:4] = 0xc0a80101", "ip[16:4] & 0xf0000000 = 0xe0000000", "ip[0:4] >= 0x45000000",
	"ip6[8:4] = 0x20010db8", "ip6[24:4] > 0xfe000000", "ip6[6] = 6", "ip6[40] = 0x80",
	"ether[1500] = 0", "ip[60000] = 1", "ether[70000] = 0", "tcp[65000:2] = 1", "ip6[2000:4] != 0",
	"len > 100", "len < 64", "len = 60", "len >= 1000", "greater 1400", "less 60", "len > 1500 or len < 40",
	"len - ip[2:2] = 14", "len * 2 > 300", "len / 8 = 10", "len % 3 = 0",
	"ether broadcast", "ether multicast", "broadcast", "multicast", "ip multicast", "ip6 multicast",
	"ether host 00:11:22:33:44:55", "ether src 02:00:00:00:00:01", "ether dst ff:ff:ff:ff:ff:ff",
	"host 10.0.0.1", "src host 10.0.0.2", "dst host 192.168.1.1", "host 10.0.0.1 and host 10.0.0.2",
	"net 10.0.0.0/8", "src net 192.168.0.0/16", "dst net 224.0.0.0/4", "net 200.0.0.0/8",
	"ip6 host 2001:db8::1", "ip6 src host fe80::1", "net 2001:db8::/32", "dst net ff00::/8",
	"host 2001:db8::2 and tcp", "ip6 dst host ff02::1",
	"port 80", "src port 53", "dst port 443", "tcp port 80", "udp port 53", "sctp port 5000",
	"portrange 1000-2000", "tcp src portrange 0-1023", "udp dst portrange 2000-65535", "port 0",
	"tcp dst port 8080 or udp src port 123", "not port 22", "ip6 and tcp port 80", "ip and udp port 67",
	"tcp port 80 and (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420)",
	"udp[8:2] = 0x1234", "tcp[20] = 0x47", "ip[ip[0]&0xf] = 1", "udp[udp[4:2]] = 0",
	"llc", "stp", "ipx", "iso", "netbeui", "decnet", "atalk", "arp or rarp", "ether[0] & 1 = 1",
	"arp[6:2] = 1", "arp[7] = 2", "not ip and not ip6", "ip or ip6 or arp",
	"icmp or (tcp and port 22)", "(tcp or udp) and not port 53", "ip and not tcp and not udp and not icmp",
	"ip[9] = 89", "ip[9] = 255", "ip6[6] = 59", "gre", "ah", "esp",
	"vlan and (tcp port 80 or udp port 53)", "mpls and (tcp port 443 or icmp)",
}

// genFilters returns the hand-picked filters and n generated ones.
func genFilters(n int) []string {
	r := rand.New(rand.NewPCG(3, 0x66696c74))
	out := append([]string{}, handFilters...)
	seen := map[string]bool{}
	for _, f := range out {
		seen[f] = true
	}
	for len(out) < len(handFilters)+n {
		f := genExpr(r, 0)
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

func pickS(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

// genExpr generates a random pcap-filter expression.
func genExpr(r *rand.Rand, depth int) string {
	if depth < 3 {
		switch r.IntN(8) {
		case 0, 1:
			return genExpr(r, depth+1) + " and " + genExpr(r, depth+1)
		case 2:
			return "(" + genExpr(r, depth+1) + " or " + genExpr(r, depth+1) + ")"
		case 3:
			return "not " + genPrimitive(r)
		}
	}
	return genPrimitive(r)
}

func genPrimitive(r *rand.Rand) string {
	ports := []string{"22", "53", "80", "443", "8080", "0", "65535", "1024", "123", "67"}
	hosts := []string{"10.0.0.1", "10.0.0.2", "192.168.1.1", "224.0.0.1", "8.8.8.8", "255.255.255.255", "2001:db8::1", "fe80::1", "ff02::1"}
	nets := []string{"10.0.0.0/8", "192.168.0.0/16", "224.0.0.0/4", "200.0.0.0/24", "2001:db8::/32", "fe80::/10", "ff00::/8"}
	dirs := []string{"", "src ", "dst ", "src or dst ", "src and dst "}
	protos := []string{"", "tcp ", "udp ", "sctp "}
	ipvers := []string{"ip", "ip6"}
	cmp := []string{"=", "!=", "<", ">", "<=", ">="}
	arith := []string{"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}
	proto := pickS(r, []string{"ip", "ip6", "tcp", "udp", "icmp", "ether", "ip6", "tcp"})
	load := func() string {
		sizes := []string{"", ":1", ":2", ":4"}
		off := []int{0, 1, 2, 6, 8, 9, 12, 13, 14, 16, 20, 23, 40}[r.IntN(13)]
		return fmt.Sprintf("%s[%d%s]", proto, off, pickS(r, sizes))
	}
	operand := func() string {
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("%d", r.IntN(300))
		case 1:
			return fmt.Sprintf("0x%x", r.Uint32())
		case 2:
			return "len"
		}
		return load()
	}
	switch r.IntN(16) {
	case 0:
		return pickS(r, []string{"ip", "ip6", "arp", "tcp", "udp", "icmp", "icmp6", "vlan", "mpls", "igmp", "sctp", "rarp", "llc"})
	case 1:
		return pickS(r, dirs) + "host " + pickS(r, hosts)
	case 2:
		return pickS(r, dirs) + "net " + pickS(r, nets)
	case 3:
		return pickS(r, protos) + pickS(r, dirs) + "port " + pickS(r, ports)
	case 4:
		a := r.IntN(2000)
		return fmt.Sprintf("%s%sportrange %d-%d", pickS(r, protos), pickS(r, dirs), a, a+r.IntN(3000))
	case 5:
		return fmt.Sprintf("len %s %d", pickS(r, cmp), r.IntN(1600))
	case 6:
		return fmt.Sprintf("%s %s %s", load(), pickS(r, cmp), operand())
	case 7:
		return fmt.Sprintf("%s %s %s %s %s", load(), pickS(r, arith), operand(), pickS(r, cmp), operand())
	case 8:
		return fmt.Sprintf("%s protochain %s", pickS(r, []string{"ip", "ip6", ""}), pickS(r, []string{"6", "17", "58", "51", "44", "1"}))
	case 9:
		return fmt.Sprintf("vlan %d", []int{1, 10, 20, 100, 4095}[r.IntN(5)])
	case 10:
		return fmt.Sprintf("mpls %d", []int{3, 16, 100, 200, 1000}[r.IntN(5)])
	case 11:
		return pickS(r, []string{"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & tcp-ack = 0", "tcp[tcpflags] & (tcp-fin|tcp-push) != 0",
			"icmp[icmptype] = icmp-echo", "icmp[icmpcode] != 0", "tcp[tcpflags] = tcp-rst"})
	case 12:
		return pickS(r, []string{"ether broadcast", "ether multicast", "ip multicast", "ip6 multicast", "ether host ff:ff:ff:ff:ff:ff", "ether src 02:00:00:00:00:02"})
	case 13:
		return fmt.Sprintf("%s proto %d", pickS(r, ipvers), []int{1, 6, 17, 44, 47, 51, 58, 89, 132}[r.IntN(9)])
	case 14:
		return fmt.Sprintf("%s %s (%s %s %s) %s %s", load(), pickS(r, arith), load(), pickS(r, arith), load(), pickS(r, cmp), operand())
	}
	return pickS(r, []string{"greater 200", "less 100", "ip[ip[0]&0xf] = 1", "tcp[tcp[12]>>4] = 0", "udp[udp[0]&0x1f:2] > 1000"})
}
