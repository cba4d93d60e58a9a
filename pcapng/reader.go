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
// Comment holds the whole opt_comment; Hook is its interface's name;
// Device and Netns are its interface's (Interface.Device, Netns), which
// ParseComment replaces with those the comment names.
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
	ifc.Device, ifc.Netns = descriptionDevice(ifc.Description)
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

func (rd *Reader) timestamp(ifc int, ticks uint64) time.Time {
	res := rd.tsres[ifc]
	sec := ticks / res
	frac := ticks % res
	return time.Unix(int64(sec), int64(frac*1e9/res))
}

func (rd *Reader) readEPB(b []byte) (*Packet, error) {
	p := &Packet{}
	ticks, err := decodeEPBBody(rd.bo, b, p)
	if err != nil {
		return nil, err
	}
	if p.Interface >= len(rd.ifaces) {
		return nil, fmt.Errorf("packet for interface %d, have %d: %w", p.Interface, len(rd.ifaces), ErrFormat)
	}
	p.Data = append([]byte(nil), p.Data...)
	p.Timestamp = rd.timestamp(p.Interface, ticks)
	ifc := &rd.ifaces[p.Interface]
	p.Hook = ifc.Name
	// The interface's device and netns are every packet's; a comment
	// that names others (ParseComment) overrides them.
	p.Device = ifc.Device
	if ifc.Netns != 0 {
		p.Netns = ifc.Netns
		p.Flags |= HasNetns
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
	s := ReadStats{Interface: ifc, Timestamp: rd.timestamp(ifc, uint64(rd.bo.Uint32(b[4:]))<<32|uint64(rd.bo.Uint32(b[8:])))}
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
