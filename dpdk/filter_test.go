//go:build dpdk

package dpdk

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"

	"github.com/bpfcap/bpfcap/internal/testutils"
	"github.com/bpfcap/bpfcap/pcapng"
)

// fallbackFrame is a packet as pdump hands it to the userspace fallback:
// the first snap bytes of a frame wire bytes long.
type fallbackFrame struct {
	name  string
	frame []byte
	wire  int
}

// ipv4Frame returns an Ethernet/IPv4 frame carrying 8 bytes of protocol
// proto (UDP or TCP ports).
func ipv4Frame(proto byte) []byte {
	f := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0, 198, 18, 0, 3, 198, 19, 0, 1}
	return append(append(f, ip...), 0x30, 0x39, 0, 9, 0, 8, 0, 0)
}

// TestFallbackFilterMatchesLibpcap: the userspace fallback (the filter
// compiled as Open compiles it, run over pdump's blocks) keeps exactly the
// packets libpcap's own filter (pcap_offline_filter) keeps on the same
// captured bytes and wire length: `len`, `greater` and `less` read the
// wire length even where the snap length cuts the packet, and protochain
// walks IPv6 extension headers. Every case both keeps and drops packets.
func TestFallbackFilterMatchesLibpcap(t *testing.T) {
	frames := []fallbackFrame{
		{"ipv4 udp, 64 on the wire", ipv4Frame(17), 64},
		{"ipv4 tcp, 1500 on the wire", ipv4Frame(6), 1500},
		{"ipv6 tcp, no extension header, 200 on the wire", testutils.IPv6ExtChainFrame(0, 6), 200},
		{"ipv6 tcp behind 3 extension headers, 90 on the wire", testutils.IPv6ExtChainFrame(3, 6), 90},
		{"ipv6 udp behind 2 extension headers, 78 on the wire", testutils.IPv6ExtChainFrame(2, 17), 78},
	}
	for _, tc := range []struct {
		expr string
		snap int
	}{
		// A snap length below every packet: the captured length is 40
		// everywhere, so a filter on it would keep all or nothing.
		{"len > 80", 40},
		{"len <= 78", 40},
		{"greater 100", 40},
		{"less 64", 40},
		{"ip protochain 17", 40},
		// Long enough for the longest extension chain (86 bytes).
		{"len > 80", 96},
		{"ip6 protochain 6", 96},
		{"ip6 protochain 17", 96},
		{"ip protochain 17", 96},
		{"ip6 protochain 6 and len > 100", 96},
	} {
		t.Run(fmt.Sprintf("%s/snap%d", tc.expr, tc.snap), func(t *testing.T) {
			_, m, err := compileFilter(tc.expr, tc.snap)
			if err != nil {
				t.Fatal(err)
			}
			libpcap, err := pcap.NewBPF(layers.LinkTypeEthernet, tc.snap, tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			blocks, want := fallbackBlocks(t, frames, tc.snap, libpcap)
			cp := &Capture{match: m, userFiltered: make([]atomic.Uint64, 1)}
			kept, n := cp.userFilter(blocks, len(frames))
			got := map[uint64]bool{}
			var p pcapng.Packet
			for rest := kept; len(rest) > 0; {
				blk, r, err := pcapng.SplitBlock(rest)
				if err != nil {
					t.Fatal(err)
				}
				if err := pcapng.DecodeEPB(blk, &p); err != nil {
					t.Fatal(err)
				}
				got[p.PacketID] = true
				rest = r
			}
			if len(got) != n {
				t.Errorf("userFilter says it kept %d packets, its blocks hold %d", n, len(got))
			}
			nwant := 0
			for i, fr := range frames {
				id := uint64(i + 1)
				if got[id] != want[id] {
					t.Errorf("%s: fallback keeps it: %v, libpcap: %v", fr.name, got[id], want[id])
				}
				if want[id] {
					nwant++
				}
			}
			if nwant == 0 || nwant == len(frames) {
				t.Fatalf("libpcap keeps %d of %d packets: the case does not tell keeping from dropping", nwant, len(frames))
			}
			if f := cp.userFiltered[0].Load(); f != uint64(len(frames)-nwant) {
				t.Errorf("%d packets counted as filtered in userspace, want %d", f, len(frames)-nwant)
			}
		})
	}
}

// fallbackBlocks encodes frames as pcapng Enhanced Packet Blocks back to
// back on interface 0, each cut to snap bytes with its wire length and
// its index+1 as packet ID, and returns them with libpcap's decision on
// each packet by ID.
func fallbackBlocks(t *testing.T, frames []fallbackFrame, snap int, libpcap *pcap.BPF) ([]byte, map[uint64]bool) {
	t.Helper()
	var buf bytes.Buffer
	w, err := pcapng.NewWriter(&buf, pcapng.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapng.Interface{Name: "port", LinkType: pcapng.LinkTypeEthernet, SnapLen: uint32(snap)}); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{}
	for i, fr := range frames {
		data := make([]byte, fr.wire)
		copy(data, fr.frame)
		data = data[:min(snap, fr.wire)]
		id := uint64(i + 1)
		if err := w.WritePacket(&pcapng.Packet{Data: data, WireLen: fr.wire, Flags: pcapng.HasPacketID, PacketID: id}); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{CaptureLength: len(data), Length: fr.wire}
		want[id] = libpcap.Matches(ci, data)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Keep the packet blocks: pdump hands the fallback nothing else.
	var blocks []byte
	var p pcapng.Packet
	for rest := buf.Bytes(); len(rest) > 0; {
		blk, r, err := pcapng.SplitBlock(rest)
		if err != nil {
			t.Fatal(err)
		}
		if pcapng.DecodeEPB(blk, &p) == nil {
			blocks = append(blocks, blk...)
		}
		rest = r
	}
	return blocks, want
}
