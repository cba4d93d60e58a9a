package xdpbench

import (
	"errors"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/internal/kconfig"
	"github.com/bpfcap/bpfcap/internal/testutils"
)

// udpFrame is an Ethernet/IPv4/UDP frame of 60 bytes to dst (no valid
// checksums needed: nothing past XDP looks at them in the benchmarks).
func udpFrame(dst net.HardwareAddr, dport uint16) []byte {
	f := make([]byte, 60)
	copy(f[0:6], dst)
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	f[12], f[13] = 0x08, 0x00
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	ip[2], ip[3] = 0, 46
	copy(ip[12:16], []byte{10, 250, 0, 1})
	copy(ip[16:20], []byte{10, 250, 0, 2})
	udp := ip[20:]
	udp[0], udp[1] = 0x9c, 0x40
	udp[2], udp[3] = byte(dport>>8), byte(dport)
	udp[4], udp[5] = 0, 26
	return f
}

// TestFloodReachesPeer checks that every generator a Flooder can use here
// delivers its frames to the other end of the veth (counted at the peer):
// the one NewFlooder picks (live frames, or a fallback where they are
// refused or missing), the XDP broadcast loop and the AF_PACKET TX ring.
func TestFloodReachesPeer(t *testing.T) {
	testutils.RunsInGuests(t)
	for _, gen := range []string{"auto", GeneratorXDPLoop, GeneratorTxRing} {
		t.Run(gen, func(t *testing.T) {
			testFloodReachesPeer(t, gen)
		})
	}
}

func testFloodReachesPeer(t *testing.T, gen string) {
	p := testutils.NewVethPair(t)
	var before, after uint64
	// veth delivers XDP frames only to a peer with XDP (or GRO) enabled.
	err := testutils.Do(t, p.PeerNS, func() error {
		prog, err := xdpProg("bpfcap_tpass", 2)
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: p.PeerIndex})
		if err != nil {
			prog.Close()
			return err
		}
		t.Cleanup(func() { l.Close(); prog.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before = peerRx(t, p)
	err = testutils.Do(t, p.HostNS, func() error {
		var f *Flooder
		var err error
		if gen == "auto" {
			f, err = NewFlooder(p.HostIndex)
		} else {
			f, err = newFlooderWith(p.HostIndex, gen)
			if errors.Is(err, ebpf.ErrNotSupported) && gen == GeneratorXDPLoop {
				kconfig.SkipOrFailFeature(t, err, "XDP broadcast redirect (BPF_F_BROADCAST)", "5.16")
			}
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if name, why := f.Generator(); gen == "auto" {
			t.Logf("generator: %s (why not live frames: %v)", name, why)
		}
		f.BatchSize = 64 // below the veth ring, so single-CPU guests do not drop
		return f.Send(udpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 2}, 9), 10000)
	})
	if err != nil {
		t.Fatal(err)
	}
	after = peerRx(t, p)
	t.Logf("peer received %d frames", after-before)
	// veth drops what does not fit its ring (a few percent in emulated
	// VM guests): a flood, not a transport.
	if got := after - before; got < 9000 {
		t.Fatalf("peer received %d of 10000 frames, want at least 90%%", got)
	}
}

// TestTxRingGrows: a TX ring set up for small frames maps larger slots
// when a larger frame comes, and both sizes reach the peer.
func TestTxRingGrows(t *testing.T) {
	testutils.RunsInGuests(t)
	p := testutils.NewVethPair(t)
	before := peerRx(t, p)
	err := testutils.Do(t, p.HostNS, func() error {
		r, err := newTxRing(p.HostIndex)
		if err != nil {
			return err
		}
		defer r.Close()
		small := udpFrame(net.HardwareAddr{2, 0, 0, 0, 0, 2}, 9)
		large := append(append([]byte(nil), small...), make([]byte, 1000)...)
		for _, f := range [][]byte{small, large, small} {
			if err := r.send(f, 500); err != nil {
				return err
			}
		}
		if r.slot < txDataOffset+len(large) {
			t.Errorf("slots of %d bytes after a %d-byte frame", r.slot, len(large))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := peerRx(t, p) - before; got < 1350 {
		t.Fatalf("peer received %d of 1500 frames, want at least 90%%", got)
	}
}
