package tracebench

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/testutils"
)

// flooder sends UDP datagrams from the host end of a veth pair to a socket
// on the peer end that never reads (no ICMP replies: the datagrams are
// dropped at the full receive buffer).
type flooder struct {
	pair *testutils.VethPair
	port int
	size int
}

const floodPort = 9999

func newFlooder(b *testing.B, size int) *flooder {
	b.Helper()
	p := testutils.NewVethPair(b)
	f := &flooder{pair: p, port: floodPort, size: size}
	var sink *net.UDPConn
	err := testutils.Do(b, p.PeerNS, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: p.PeerIP, Port: floodPort})
		sink = c
		return err
	})
	if err != nil {
		b.Fatalf("listen on the peer: %v", err)
	}
	b.Cleanup(func() { sink.Close() })
	return f
}

// send sends n datagrams as fast as one thread pinned to CPU 0 can and
// returns how long it took.
func (f *flooder) send(b *testing.B, n int) time.Duration {
	b.Helper()
	var took time.Duration
	err := testutils.Do(b, f.pair.HostNS, func() error {
		return sendFrom(f.pair.HostNS, f.pair.PeerIP, f.port, f.size, n, &took)
	})
	if err != nil {
		b.Fatalf("flood: %v", err)
	}
	return took
}

func sendFrom(_ netns.NsHandle, dst net.IP, port, size, n int, took *time.Duration) error {
	// testutils.Do runs this on a locked thread inside the namespace.
	var cpu0 unix.CPUSet
	cpu0.Set(0)
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("get affinity: %w", err)
	}
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		return fmt.Errorf("pin sender to CPU 0: %w", err)
	}
	defer unix.SchedSetaffinity(0, &old)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Port: port}
	copy(to.Addr[:], dst.To4())
	buf := make([]byte, size)
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := unix.Sendto(fd, buf, unix.MSG_DONTWAIT, to); err != nil && err != unix.EAGAIN && err != unix.ENOBUFS {
			return fmt.Errorf("sendto: %w", err)
		}
	}
	*took = time.Since(start)
	runtime.KeepAlive(buf)
	return nil
}
