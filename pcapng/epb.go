package pcapng

import (
	"encoding/binary"
	"fmt"
	"time"
)

// optEPBHash is epb_hash: a hash type byte and the hash (DPDK writes the
// 32-bit RSS hash, type 2).
const optEPBHash = 3

// SplitBlock splits the first block off b, complete little-endian blocks
// laid back to back (a source's bulk output), and returns it and the rest.
// A block whose length fields do not fit b is ErrBadBlock.
func SplitBlock(b []byte) (block, rest []byte, err error) {
	if len(b) < 12 {
		return nil, nil, fmt.Errorf("%d bytes left, a block has at least 12: %w", len(b), ErrBadBlock)
	}
	n := int(le.Uint32(b[4:]))
	if n < 12 || n > len(b) || n%4 != 0 || int(le.Uint32(b[n-4:])) != n {
		return nil, nil, fmt.Errorf("block length %d does not fit %d bytes: %w", n, len(b), ErrBadBlock)
	}
	return b[:n], b[n:], nil
}

// DecodeEPB fills p from one little-endian Enhanced Packet Block with
// nanosecond timestamps, as a source encodes it (DPDK's rte_pcapng_copy,
// bpfcap's own Writer): interface, timestamp, lengths, data and the
// options a Reader also reads. p.Data aliases blk. Anything else is
// ErrBadBlock.
func DecodeEPB(blk []byte, p *Packet) error {
	if len(blk) < 32 || le.Uint32(blk) != blockEPB || int(le.Uint32(blk[4:])) != len(blk) {
		return fmt.Errorf("decode packet block: not a complete enhanced packet block: %w", ErrBadBlock)
	}
	ticks, err := decodeEPBBody(le, blk[8:len(blk)-4], p)
	if err != nil {
		return fmt.Errorf("decode packet block: %w", ErrBadBlock)
	}
	p.Timestamp = time.Unix(0, int64(ticks))
	return nil
}

// decodeEPBBody decodes an Enhanced Packet Block's body (between the
// length fields) into p, Data aliasing b, and returns the timestamp in the
// interface's ticks for the caller to scale. It fails only when the
// captured length overruns the body.
func decodeEPBBody(bo binary.ByteOrder, b []byte, p *Packet) (ticks uint64, err error) {
	if len(b) < 20 {
		return 0, fmt.Errorf("short packet block: %w", ErrFormat)
	}
	caplen := int(bo.Uint32(b[12:]))
	if caplen < 0 || caplen > len(b)-20 {
		return 0, fmt.Errorf("packet of %d bytes overruns its block: %w", caplen, ErrFormat)
	}
	*p = Packet{
		Interface:   int(bo.Uint32(b)),
		Data:        b[20 : 20+caplen],
		WireLen:     int(bo.Uint32(b[16:])),
		VerdictType: VerdictNone,
	}
	hash := ""
	for code, val := range options(bo, b[20+pad4(caplen):]) {
		switch code {
		case optComment:
			p.Comment = string(val)
		case optEPBFlags:
			if len(val) == 4 {
				p.Direction = Direction(bo.Uint32(val) & 3)
			}
		case optEPBHash:
			if len(val) == 5 {
				hash = fmt.Sprintf("rss hash 0x%08x", bo.Uint32(val[1:]))
			}
		case optEPBDropCount:
			if len(val) == 8 {
				p.Flags |= HasDropCount
				p.DropCount = bo.Uint64(val)
			}
		case optEPBPacketID:
			if len(val) == 8 {
				p.Flags |= HasPacketID
				p.PacketID = bo.Uint64(val)
			}
		case optEPBQueue:
			// 4 bytes as the spec says; DPDK before 23.x wrote 8.
			switch len(val) {
			case 4:
				p.Flags |= HasQueue
				p.Queue = bo.Uint32(val)
			case 8:
				p.Flags |= HasQueue
				p.Queue = uint32(bo.Uint64(val))
			}
		case optEPBVerdict:
			if len(val) == 9 && (val[0] == byte(VerdictTC) || val[0] == byte(VerdictXDP)) {
				p.VerdictType = VerdictType(val[0])
				p.Verdict = int64(bo.Uint64(val[1:]))
			}
		}
	}
	if p.Comment == "" && hash != "" {
		p.Comment = hash // Packet has no hash field: a person reads it here
	}
	return uint64(bo.Uint32(b[4:]))<<32 | uint64(bo.Uint32(b[8:])), nil
}
