package pcapng

import (
	"encoding/binary"
	"testing"
	"time"
)

// dpdkEPB builds an Enhanced Packet Block the way DPDK's rte_pcapng_copy does:
// header, data padded to 4 bytes, flags, queue and (optionally) hash
// options, no end-of-options, trailing length.
func dpdkEPB(ifc uint32, ts uint64, data []byte, wire uint32, dir, queue uint32, hash *uint32) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 6)
	b = le.AppendUint32(b, 0) // length, below
	b = le.AppendUint32(b, ifc)
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, wire)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = le.AppendUint16(b, optEPBFlags)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, dir)
	b = le.AppendUint16(b, optEPBQueue)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, queue)
	if hash != nil {
		b = le.AppendUint16(b, optEPBHash)
		b = le.AppendUint16(b, 5)
		b = append(b, 2)
		b = le.AppendUint32(b, *hash)
		b = append(b, 0, 0, 0)
	}
	b = le.AppendUint32(b, uint32(len(b)+4))
	le.PutUint32(b[4:], uint32(len(b)))
	return b
}

func TestDecodeEPBFromDPDK(t *testing.T) {
	hash := uint32(0xdeadbeef)
	ts := uint64(time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC).UnixNano())
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	blocks := append(dpdkEPB(1, ts, data, 60, 2, 3, nil), dpdkEPB(0, ts+1, data[:4], 4, 1, 0, &hash)...)

	var p Packet
	blk, rest, err := SplitBlock(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeEPB(blk, &p); err != nil {
		t.Fatal(err)
	}
	if p.Interface != 1 || uint64(p.Timestamp.UnixNano()) != ts || string(p.Data) != string(data) || p.WireLen != 60 ||
		p.Direction != DirectionOutbound || p.Flags&HasQueue == 0 || p.Queue != 3 || p.Comment != "" {
		t.Fatalf("first block decoded as %+v", p)
	}
	blk, rest, err = SplitBlock(rest)
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeEPB(blk, &p); err != nil {
		t.Fatal(err)
	}
	if p.Interface != 0 || len(p.Data) != 4 || p.Direction != DirectionInbound || p.Comment != "rss hash 0xdeadbeef" {
		t.Fatalf("second block decoded as %+v", p)
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
}

func TestDecodeEPBRejectsBadBlocks(t *testing.T) {
	good := dpdkEPB(0, 1, []byte{1, 2, 3, 4}, 4, 1, 0, nil)
	if _, _, err := SplitBlock(good[:len(good)-4]); err == nil {
		t.Error("SplitBlock accepted a block longer than its bytes")
	}
	bad := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(bad[20:], 400) // captured length beyond the block
	var p Packet
	if err := DecodeEPB(bad, &p); err == nil {
		t.Error("decodeEPB accepted a captured length beyond the block")
	}
	bad = append([]byte(nil), good...)
	bad[0] = 5
	if err := DecodeEPB(bad, &p); err == nil {
		t.Error("decodeEPB accepted a non-EPB block")
	}
}

// BenchmarkDecodeEPB is the per-packet cost of the path summaries (and
// sinks without the bulk path) take.
func BenchmarkDecodeEPBFromDPDK(b *testing.B) {
	blk := dpdkEPB(0, 1, make([]byte, 64), 64, 1, 0, nil)
	var p Packet
	for b.Loop() {
		if err := DecodeEPB(blk, &p); err != nil {
			b.Fatal(err)
		}
	}
}
