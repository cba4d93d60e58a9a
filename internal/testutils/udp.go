package testutils

import (
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
)

// ListenUDP opens an IPv4 UDP socket on ip:port (0: any port) inside ns and
// closes it with tb.Cleanup.
func ListenUDP(tb testing.TB, ns netns.NsHandle, ip net.IP, port int) *net.UDPConn {
	tb.Helper()
	var c *net.UDPConn
	err := Do(tb, ns, func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		return err
	})
	if err != nil {
		tb.Fatalf("udp socket %s:%d: %v", ip, port, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// CountDatagrams counts the datagrams that arrive on c: it waits up to
// first for the first one (a loaded machine can delay delivery), then until
// none arrives for quiet. Expecting none, pass first == quiet.
func CountDatagrams(c *net.UDPConn, first, quiet time.Duration) int {
	n := 0
	buf := make([]byte, 65536)
	for wait := first; ; wait = quiet {
		c.SetReadDeadline(time.Now().Add(wait))
		if _, _, err := c.ReadFromUDP(buf); err != nil {
			return n
		}
		n++
	}
}

// DNSQuery returns a DNS query for example.org (type A) with the given ID,
// as a UDP payload.
func DNSQuery(id uint16) []byte {
	dns := &layers.DNS{ID: id, RD: true, Questions: []layers.DNSQuestion{{Name: []byte("example.org"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := dns.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		panic(err) // a fixed, valid message
	}
	return buf.Bytes()
}

// SendUDP sends n datagrams of size zero bytes from p's host end to port on
// its peer end. The socket is unconnected, so the peer's ICMP port
// unreachable (a closed port is how tests make drops) does not fail the
// next write.
func SendUDP(tb testing.TB, p *VethPair, port, n, size int) {
	tb.Helper()
	err := Do(tb, p.HostNS, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: p.HostIP})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDP(make([]byte, size), &net.UDPAddr{IP: p.PeerIP, Port: port}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("send %d datagrams to port %d: %v", n, port, err)
	}
}
