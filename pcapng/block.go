package pcapng

import "encoding/binary"

// Block types.
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockISB = 0x00000005
	blockEPB = 0x00000006

	byteOrderMagic = 0x1A2B3C4D
)

// Option codes (pcapng draft, section 4).
const (
	optEnd     = 0
	optComment = 1

	optSHBUserAppl = 4

	optIfName        = 2
	optIfDescription = 3
	optIfMACAddr     = 6
	optIfSpeed       = 8
	optIfTSResol     = 9
	optIfFilter      = 11
	optIfOS          = 12

	optEPBFlags     = 2
	optEPBDropCount = 4
	optEPBPacketID  = 5
	optEPBQueue     = 6
	optEPBVerdict   = 7

	optISBStartTime    = 2
	optISBEndTime      = 3
	optISBIfRecv       = 4
	optISBIfDrop       = 5
	optISBFilterAccept = 6
	optISBOSDrop       = 7
	optISBUsrDeliv     = 8
)

var le = binary.LittleEndian

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// blockBuf builds one block in a reused byte slice.
type blockBuf struct {
	b []byte
}

// start resets the buffer and writes the block type and a placeholder length.
func (bb *blockBuf) start(typ uint32) {
	bb.b = bb.b[:0]
	bb.begin(typ)
}

// begin appends a block's type and a placeholder length to what bb holds
// (a block built in place after others) and returns where the block
// starts, for end.
func (bb *blockBuf) begin(typ uint32) int {
	base := len(bb.b)
	bb.u32(typ)
	bb.u32(0)
	return base
}

func (bb *blockBuf) u16(v uint16) { bb.b = le.AppendUint16(bb.b, v) }
func (bb *blockBuf) u32(v uint32) { bb.b = le.AppendUint32(bb.b, v) }
func (bb *blockBuf) u64(v uint64) { bb.b = le.AppendUint64(bb.b, v) }

// bytes appends p and zero padding to a multiple of 4.
func (bb *blockBuf) bytes(p []byte) {
	bb.b = append(bb.b, p...)
	bb.zeros(pad4(len(p)) - len(p))
}

var zeroPad [4]byte

// zeros appends n < 4 zero bytes (padding).
func (bb *blockBuf) zeros(n int) { bb.b = append(bb.b, zeroPad[:n]...) }

// optHeader appends an option header; the caller appends length bytes and
// then calls optPad.
func (bb *blockBuf) optHeader(code uint16, length int) {
	bb.u16(code)
	bb.u16(uint16(length))
}

func (bb *blockBuf) optPad(length int) { bb.zeros(pad4(length) - length) }

func (bb *blockBuf) optString(code uint16, s string) {
	if s == "" {
		return
	}
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	bb.optHeader(code, len(s))
	bb.b = append(bb.b, s...)
	bb.optPad(len(s))
}

func (bb *blockBuf) optBytes(code uint16, p []byte) {
	bb.optHeader(code, len(p))
	bb.b = append(bb.b, p...)
	bb.optPad(len(p))
}

func (bb *blockBuf) optU32(code uint16, v uint32) {
	bb.optHeader(code, 4)
	bb.u32(v)
}

func (bb *blockBuf) optU64(code uint16, v uint64) {
	bb.optHeader(code, 8)
	bb.u64(v)
}

// optTimestamp writes a 64-bit timestamp as two 32-bit halves (high first).
func (bb *blockBuf) optTimestamp(code uint16, ns uint64) {
	bb.optHeader(code, 8)
	bb.u32(uint32(ns >> 32))
	bb.u32(uint32(ns))
}

// finish appends the end-of-options marker if options were written
// (hasOpts), the trailing length, and patches the leading length.
func (bb *blockBuf) finish(hasOpts bool) []byte {
	bb.end(0, hasOpts)
	return bb.b
}

// end finishes the block that begins at base (begin): the end-of-options
// marker if options were written, the trailing length, and the leading
// length patched.
func (bb *blockBuf) end(base int, hasOpts bool) {
	if hasOpts {
		bb.u32(optEnd)
	}
	n := len(bb.b) - base + 4
	bb.u32(uint32(n))
	le.PutUint32(bb.b[base+4:], uint32(n))
}
