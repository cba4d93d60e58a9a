package pcapng

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// ReadStats is one Interface Statistics Block as read back.
type ReadStats struct {
	Interface int
	Timestamp time.Time
	Stats     InterfaceStats
	Comment   string
}

// Reader reads the blocks a Writer writes (SHB, IDB, EPB, ISB; other
// blocks are skipped). It is meant for tests and tools, not speed.
type Reader struct {
	r      io.Reader
	bo     binary.ByteOrder
	ifaces []Interface
	tsres  []uint64 // ticks per second, per interface
	stats  []ReadStats
	appl   string
}

// ErrFormat is wrapped by errors about malformed input.
var ErrFormat = errors.New("malformed pcapng")

// NewReader reads the Section Header Block from r.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: r}
	typ, body, err := rd.block()
	if err != nil {
		return nil, fmt.Errorf("read section header: %w", err)
	}
	if typ != blockSHB {
		return nil, fmt.Errorf("first block has type %#x, want a section header: %w", typ, ErrFormat)
	}
	if len(body) < 16 {
		return nil, fmt.Errorf("short section header: %w", ErrFormat)
	}
	for code, val := range options(rd.bo, body[16:]) {
		if code == optSHBUserAppl {
			rd.appl = string(val)
		}
	}
	return rd, nil
}

// block reads one block and returns its type and body (between the length
// fields). On the first block it detects the byte order.
func (rd *Reader) block() (uint32, []byte, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(rd.r, hdr[:8]); err != nil {
		return 0, nil, err
	}
	if rd.bo == nil {
		if _, err := io.ReadFull(rd.r, hdr[8:12]); err != nil {
			return 0, nil, fmt.Errorf("read byte-order magic: %w", err)
		}
		switch {
		case binary.LittleEndian.Uint32(hdr[8:]) == byteOrderMagic:
			rd.bo = binary.LittleEndian
		case binary.BigEndian.Uint32(hdr[8:]) == byteOrderMagic:
			rd.bo = binary.BigEndian
		default:
			return 0, nil, fmt.Errorf("no byte-order magic: %w", ErrFormat)
		}
		if rd.bo.Uint32(hdr[:]) != blockSHB {
			return 0, nil, fmt.Errorf("not a pcapng file: %w", ErrFormat)
		}
	}
	typ := rd.bo.Uint32(hdr[:])
	n := int(rd.bo.Uint32(hdr[4:]))
	if n < 12 || n%4 != 0 || n > 1<<26 {
		return 0, nil, fmt.Errorf("block type %#x has length %d: %w", typ, n, ErrFormat)
	}
	have := 8
	if typ == blockSHB {
		have = 12
	}
	buf := make([]byte, n-8)
	copy(buf, hdr[8:have])
	if _, err := io.ReadFull(rd.r, buf[have-8:]); err != nil {
		return 0, nil, fmt.Errorf("read block type %#x: %w", typ, noEOF(err))
	}
	if rd.bo.Uint32(buf[len(buf)-4:]) != uint32(n) {
		return 0, nil, fmt.Errorf("block type %#x: trailing length differs: %w", typ, ErrFormat)
	}
	return typ, buf[:len(buf)-4], nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// options iterates over an option list.
func options(bo binary.ByteOrder, b []byte) func(func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			code, n := bo.Uint16(b), int(bo.Uint16(b[2:]))
			if code == optEnd || 4+n > len(b) {
				return
			}
			if !yield(code, b[4:4+n]) {
				return
			}
			b = b[4+pad4(n):]
		}
	}
}

// Application returns the section's shb_userappl.
func (rd *Reader) Application() string { return rd.appl }

// Interfaces returns the interfaces read so far.
func (rd *Reader) Interfaces() []Interface { return rd.ifaces }

// Stats returns the statistics blocks read so far.
func (rd *Reader) Stats() []ReadStats { return rd.stats }

// Next returns the next packet, reading interface and statistics blocks
// on the way. It returns io.EOF at the end of the input. The packet's
// Comment holds the whole opt_comment; Hook is its interface's name.
func (rd *Reader) Next() (*Packet, error) {
	for {
		typ, body, err := rd.block()
		if err != nil {
			return nil, err
		}
		switch typ {
		case blockIDB:
			if err := rd.readIDB(body); err != nil {
				return nil, err
			}
		case blockEPB:
			return rd.readEPB(body)
		case blockISB:
			if err := rd.readISB(body); err != nil {
				return nil, err
			}
		case blockSHB:
			return nil, fmt.Errorf("second section: not supported: %w", ErrFormat)
		}
	}
}

func (rd *Reader) readIDB(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("short interface block: %w", ErrFormat)
	}
	ifc := Interface{LinkType: LinkType(rd.bo.Uint16(b)), SnapLen: rd.bo.Uint32(b[4:])}
	res := uint64(1e6)
	for code, val := range options(rd.bo, b[8:]) {
		switch code {
		case optIfName:
			ifc.Name = string(val)
		case optIfDescription:
			ifc.Description = string(val)
		case optIfMACAddr:
			ifc.MAC = append([]byte(nil), val...)
		case optIfSpeed:
			if len(val) == 8 {
				ifc.Speed = rd.bo.Uint64(val)
			}
		case optIfTSResol:
			if len(val) == 1 {
				res = tsres(val[0])
			}
		case optIfFilter:
			if len(val) > 0 && val[0] == 0 {
				ifc.Filter = string(val[1:])
			}
		case optIfOS:
			ifc.OS = string(val)
		}
	}
	rd.ifaces = append(rd.ifaces, ifc)
	rd.tsres = append(rd.tsres, res)
	return nil
}

func tsres(v byte) uint64 {
	r := uint64(1)
	if v&0x80 != 0 {
		for range v & 0x7f {
			r *= 2
		}
		return r
	}
	for range v {
		r *= 10
	}
	return r
}

func (rd *Reader) timestamp(ifc int, hi, lo uint32) time.Time {
	ticks := uint64(hi)<<32 | uint64(lo)
	res := rd.tsres[ifc]
	sec := ticks / res
	frac := ticks % res
	return time.Unix(int64(sec), int64(frac*1e9/res))
}

func (rd *Reader) readEPB(b []byte) (*Packet, error) {
	if len(b) < 20 {
		return nil, fmt.Errorf("short packet block: %w", ErrFormat)
	}
	ifc := int(rd.bo.Uint32(b))
	if ifc >= len(rd.ifaces) {
		return nil, fmt.Errorf("packet for interface %d, have %d: %w", ifc, len(rd.ifaces), ErrFormat)
	}
	caplen := int(rd.bo.Uint32(b[12:]))
	if 20+caplen > len(b) {
		return nil, fmt.Errorf("packet of %d bytes overruns its block: %w", caplen, ErrFormat)
	}
	p := &Packet{
		Interface:   ifc,
		Timestamp:   rd.timestamp(ifc, rd.bo.Uint32(b[4:]), rd.bo.Uint32(b[8:])),
		Data:        append([]byte(nil), b[20:20+caplen]...),
		WireLen:     int(rd.bo.Uint32(b[16:])),
		Hook:        rd.ifaces[ifc].Name,
		VerdictType: VerdictNone,
	}
	for code, val := range options(rd.bo, b[20+pad4(caplen):]) {
		switch code {
		case optComment:
			p.Comment = string(val)
		case optEPBFlags:
			if len(val) == 4 {
				p.Direction = Direction(rd.bo.Uint32(val) & 3)
			}
		case optEPBDropCount:
			if len(val) == 8 {
				p.Flags |= HasDropCount
				p.DropCount = rd.bo.Uint64(val)
			}
		case optEPBPacketID:
			if len(val) == 8 {
				p.Flags |= HasPacketID
				p.PacketID = rd.bo.Uint64(val)
			}
		case optEPBQueue:
			if len(val) == 4 {
				p.Flags |= HasQueue
				p.Queue = rd.bo.Uint32(val)
			}
		case optEPBVerdict:
			if len(val) == 9 && (val[0] == byte(VerdictTC) || val[0] == byte(VerdictXDP)) {
				p.VerdictType = VerdictType(val[0])
				p.Verdict = int64(rd.bo.Uint64(val[1:]))
			}
		}
	}
	return p, nil
}

func (rd *Reader) readISB(b []byte) error {
	if len(b) < 12 {
		return fmt.Errorf("short statistics block: %w", ErrFormat)
	}
	ifc := int(rd.bo.Uint32(b))
	if ifc >= len(rd.ifaces) {
		return fmt.Errorf("statistics for interface %d, have %d: %w", ifc, len(rd.ifaces), ErrFormat)
	}
	s := ReadStats{Interface: ifc, Timestamp: rd.timestamp(ifc, rd.bo.Uint32(b[4:]), rd.bo.Uint32(b[8:]))}
	for code, val := range options(rd.bo, b[12:]) {
		var v uint64
		if len(val) == 8 {
			v = rd.bo.Uint64(val)
		}
		switch code {
		case optComment:
			s.Comment = string(val)
		case optISBIfRecv:
			s.Stats.Seen = v
			s.Stats.SeenCounted = true
		case optISBIfDrop:
			s.Stats.Lost = v
		case optISBFilterAccept:
			s.Stats.Matched = v
		case optISBOSDrop:
			s.Stats.Skipped = v
		case optISBUsrDeliv:
			s.Stats.Captured = v
		}
	}
	rd.stats = append(rd.stats, s)
	return nil
}
