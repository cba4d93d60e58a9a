package dpdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// EPB option codes DPDK's rte_pcapng_copy writes.
const (
	optEndOfOpt = 0
	optComment  = 1
	optFlags    = 2
	optHash     = 3
	optQueue    = 6
)

var errShortEPB = errors.New("truncated enhanced packet block")

// nextEPB splits the first block off b (complete little-endian blocks
// laid out back to back) and returns it with the rest.
func nextEPB(b []byte) (block, rest []byte, err error) {
	if len(b) < 32 {
		return nil, nil, errShortEPB
	}
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if n < 32 || n > len(b) || n%4 != 0 {
		return nil, nil, fmt.Errorf("block length %d of %d bytes: %w", n, len(b), errShortEPB)
	}
	return b[:n], b[n:], nil
}

// decodeEPB fills p from one Enhanced Packet Block as DPDK builds it:
// interface id, timestamp (ns), captured and original length, data, and
// the flags (direction), queue and RSS hash options. p.Data aliases blk.
// The hash goes into p.Comment (it has no Packet field).
func decodeEPB(blk []byte, p *pcapng.Packet) error {
	le := binary.LittleEndian
	if len(blk) < 32 || le.Uint32(blk) != 6 {
		return fmt.Errorf("decode DPDK packet: %w", errShortEPB)
	}
	capLen := int(le.Uint32(blk[20:]))
	body := blk[28 : len(blk)-4]
	if capLen > len(body) {
		return fmt.Errorf("decode DPDK packet: captured length %d beyond the block: %w", capLen, errShortEPB)
	}
	*p = pcapng.Packet{
		Interface:   int(le.Uint32(blk[8:])),
		Timestamp:   time.Unix(0, int64(uint64(le.Uint32(blk[12:]))<<32|uint64(le.Uint32(blk[16:])))),
		Data:        body[:capLen],
		WireLen:     int(le.Uint32(blk[24:])),
		VerdictType: pcapng.VerdictNone,
	}
	opts := body[(capLen+3)&^3:]
	for len(opts) >= 4 {
		code, olen := le.Uint16(opts), int(le.Uint16(opts[2:]))
		if code == optEndOfOpt || 4+olen > len(opts) {
			break
		}
		val := opts[4 : 4+olen]
		switch {
		case code == optFlags && olen == 4:
			p.Direction = pcapng.Direction(le.Uint32(val) & 3)
		case code == optQueue && olen == 4:
			p.Flags |= pcapng.HasQueue
			p.Queue = le.Uint32(val)
		case code == optQueue && olen == 8:
			p.Flags |= pcapng.HasQueue
			p.Queue = uint32(le.Uint64(val))
		case code == optHash && olen == 5:
			// Hash type 2 is Toeplitz, what DPDK reports for RSS.
			p.Comment = fmt.Sprintf("rss hash 0x%08x", le.Uint32(val[1:]))
		case code == optComment:
			p.Comment = string(val)
		}
		opts = opts[4+((olen+3)&^3):]
	}
	return nil
}
