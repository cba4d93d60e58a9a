package pcapng

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Application is written as shb_userappl, e.g. "bpfcap".
	Application string
	// OS is written as shb_os when set.
	OS string
	// BufferSize is the write buffer size (default 64 KiB). Call Flush to
	// push buffered blocks out.
	BufferSize int
}

// Writer writes one pcapng section: the Section Header Block at once, then
// Interface Description Blocks, Enhanced Packet Blocks and Interface
// Statistics Blocks as they come. It is not safe for concurrent use.
//
// Every method writes whole blocks: an error from the underlying writer
// can leave a partial block only in what the writer itself had accepted.
type Writer struct {
	w      *bufio.Writer
	ifaces []Interface
	bb     blockBuf
	cb     []byte // comment scratch
	err    error  // sticky write error
}

// NewWriter writes the Section Header Block to w and flushes it, so a
// reader at the other end of a pipe recognises the format at once.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	size := opts.BufferSize
	if size <= 0 {
		size = 64 << 10
	}
	pw := &Writer{w: bufio.NewWriterSize(w, size)}
	bb := &pw.bb
	bb.start(blockSHB)
	bb.u32(byteOrderMagic)
	bb.u16(1) // major
	bb.u16(0) // minor
	bb.u64(^uint64(0))
	hasOpts := opts.Application != "" || opts.OS != ""
	bb.optString(3, opts.OS) // shb_os
	bb.optString(optSHBUserAppl, opts.Application)
	if err := pw.write(bb.finish(hasOpts)); err != nil {
		return nil, fmt.Errorf("write pcapng section header: %w", err)
	}
	if err := pw.Flush(); err != nil {
		return nil, fmt.Errorf("write pcapng section header: %w", err)
	}
	return pw, nil
}

func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return err
	}
	return nil
}

// AddInterface writes an Interface Description Block and returns the
// interface's index for Packet.Interface and WriteStats. Timestamps are
// in nanoseconds (if_tsresol 9).
func (w *Writer) AddInterface(ifc Interface) (int, error) {
	bb := &w.bb
	bb.start(blockIDB)
	bb.u16(uint16(ifc.LinkType))
	bb.u16(0)
	bb.u32(ifc.SnapLen)
	bb.optString(optIfName, ifc.Name)
	bb.optString(optIfDescription, ifc.Description)
	if len(ifc.MAC) == 6 {
		bb.optBytes(optIfMACAddr, ifc.MAC)
	}
	if ifc.Speed != 0 {
		bb.optU64(optIfSpeed, ifc.Speed)
	}
	bb.optHeader(optIfTSResol, 1)
	bb.b = append(bb.b, 9)
	bb.optPad(1)
	if ifc.Filter != "" {
		f := ifc.Filter
		if len(f) > 0xfffe {
			f = f[:0xfffe]
		}
		bb.optHeader(optIfFilter, 1+len(f))
		bb.b = append(bb.b, 0) // libpcap filter string
		bb.b = append(bb.b, f...)
		bb.optPad(1 + len(f))
	}
	bb.optString(optIfOS, ifc.OS)
	if err := w.write(bb.finish(true)); err != nil {
		return 0, fmt.Errorf("write pcapng interface %q: %w", ifc.Name, err)
	}
	w.ifaces = append(w.ifaces, ifc)
	return len(w.ifaces) - 1, nil
}

// Interfaces returns the interfaces added so far, by index.
func (w *Writer) Interfaces() []Interface { return w.ifaces }

// WritePacket writes p as an Enhanced Packet Block with its options and a
// readable comment. Data beyond the interface's snap length is not
// stored. It allocates nothing once its buffers have grown.
func (w *Writer) WritePacket(p *Packet) error {
	if p.Interface < 0 || p.Interface >= len(w.ifaces) {
		return fmt.Errorf("write packet: interface %d not added (have %d)", p.Interface, len(w.ifaces))
	}
	ifc := &w.ifaces[p.Interface]
	data := p.Data
	if ifc.SnapLen != 0 && uint32(len(data)) > ifc.SnapLen {
		data = data[:ifc.SnapLen]
	}
	wire := p.WireLen
	if wire < len(data) {
		wire = len(data)
	}
	bb := &w.bb
	bb.start(blockEPB)
	bb.u32(uint32(p.Interface))
	ts := uint64(p.Timestamp.UnixNano())
	bb.u32(uint32(ts >> 32))
	bb.u32(uint32(ts))
	bb.u32(uint32(len(data)))
	bb.u32(uint32(wire))
	bb.bytes(data)

	w.cb = appendComment(w.cb[:0], ifc.Name, p)
	if len(w.cb) > 0 {
		bb.optBytes(optComment, w.cb)
	}
	if p.Direction != DirectionUnknown {
		bb.optU32(optEPBFlags, uint32(p.Direction)&3)
	}
	if p.Flags&HasDropCount != 0 {
		bb.optU64(optEPBDropCount, p.DropCount)
	}
	if p.Flags&HasPacketID != 0 {
		bb.optU64(optEPBPacketID, p.PacketID)
	}
	if p.Flags&HasQueue != 0 {
		bb.optU32(optEPBQueue, p.Queue)
	}
	if p.VerdictType == VerdictTC || p.VerdictType == VerdictXDP {
		bb.optHeader(optEPBVerdict, 9)
		bb.b = append(bb.b, byte(p.VerdictType))
		bb.u64(uint64(p.Verdict))
		bb.optPad(9)
	}
	return w.write(bb.finish(true))
}

// appendComment appends the readable metadata of p: hook, verdict, drop
// reason, device, task, netns, mark and the free-form comment.
func appendComment(b []byte, ifname string, p *Packet) []byte {
	field := func(b []byte, key string) []byte {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, key...)
		return append(b, '=')
	}
	hook := p.Hook
	if hook == "" {
		hook = ifname
	}
	if hook != "" {
		b = field(b, "hook")
		b = append(b, hook...)
	}
	if p.VerdictType == VerdictTC || p.VerdictType == VerdictXDP {
		b = field(b, "verdict")
		b = append(b, VerdictName(p.VerdictType, p.Verdict)...)
	}
	if p.DropReason != "" {
		b = field(b, "reason")
		b = append(b, p.DropReason...)
	}
	if p.Device != "" {
		b = field(b, "dev")
		b = append(b, p.Device...)
	}
	if p.Direction != DirectionUnknown {
		b = field(b, "dir")
		b = append(b, p.Direction.String()...)
	}
	if p.Flags&HasPID != 0 {
		b = field(b, "pid")
		b = strconv.AppendUint(b, uint64(p.PID), 10)
		if p.Comm != "" {
			b = field(b, "comm")
			b = append(b, p.Comm...)
		}
	}
	if p.Flags&HasNetns != 0 {
		b = field(b, "netns")
		b = strconv.AppendUint(b, uint64(p.Netns), 10)
	}
	if p.Flags&HasMark != 0 {
		b = field(b, "mark")
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(p.Mark), 16)
	}
	if p.Comment != "" {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, p.Comment...)
	}
	if len(b) > 0xffff {
		b = b[:0xffff]
	}
	return b
}

// WriteStats writes an Interface Statistics Block for interface ifIndex
// taken at ts, covering the capture since start (zero: not written).
func (w *Writer) WriteStats(ifIndex int, start, ts time.Time, s InterfaceStats) error {
	if ifIndex < 0 || ifIndex >= len(w.ifaces) {
		return fmt.Errorf("write statistics: interface %d not added (have %d)", ifIndex, len(w.ifaces))
	}
	bb := &w.bb
	bb.start(blockISB)
	bb.u32(uint32(ifIndex))
	ns := uint64(ts.UnixNano())
	bb.u32(uint32(ns >> 32))
	bb.u32(uint32(ns))
	if s.UserFiltered != 0 {
		w.cb = append(w.cb[:0], "filtered in userspace: "...)
		w.cb = strconv.AppendUint(w.cb, s.UserFiltered, 10)
		bb.optBytes(optComment, w.cb)
	}
	if !start.IsZero() {
		bb.optTimestamp(optISBStartTime, uint64(start.UnixNano()))
	}
	bb.optTimestamp(optISBEndTime, ns)
	if s.SeenCounted {
		bb.optU64(optISBIfRecv, s.Seen)
	}
	bb.optU64(optISBIfDrop, s.Lost)
	bb.optU64(optISBFilterAccept, s.Matched)
	bb.optU64(optISBOSDrop, s.Skipped)
	bb.optU64(optISBUsrDeliv, s.Captured)
	if err := w.write(bb.finish(true)); err != nil {
		return fmt.Errorf("write pcapng statistics for %q: %w", w.ifaces[ifIndex].Name, err)
	}
	return nil
}

// ErrBadBlock is returned by WriteRawBlock for bytes that are not one
// complete pcapng block.
var ErrBadBlock = errors.New("not a complete pcapng block")

// WriteRawBlock writes an already encoded block (for example an Enhanced
// Packet Block a DPDK source built itself) as is. b must be one complete
// little-endian block whose interface, if any, was added to this Writer.
func (w *Writer) WriteRawBlock(b []byte) error {
	if len(b) < 12 || len(b)%4 != 0 {
		return fmt.Errorf("write raw block of %d bytes: %w", len(b), ErrBadBlock)
	}
	n := le.Uint32(b[4:])
	if int(n) != len(b) || le.Uint32(b[len(b)-4:]) != n {
		return fmt.Errorf("write raw block: length fields say %d, have %d bytes: %w", n, len(b), ErrBadBlock)
	}
	if typ := le.Uint32(b); typ == blockEPB || typ == blockISB {
		if len(b) < 16 {
			return fmt.Errorf("write raw block: %w", ErrBadBlock)
		}
		if id := le.Uint32(b[8:]); int(id) >= len(w.ifaces) {
			return fmt.Errorf("write raw block: interface %d not added (have %d)", id, len(w.ifaces))
		}
	}
	return w.write(b)
}

// WriteRawPackets writes n Enhanced Packet Blocks laid back to back in b,
// after checking each one's lengths and interface ID (ErrBadBlock). It
// writes all of them or none.
func (w *Writer) WriteRawPackets(b []byte, n int) (int, error) {
	off := 0
	for i := 0; i < n; i++ {
		l, err := w.checkRawEPB(b[off:])
		if err != nil {
			return 0, fmt.Errorf("write raw packet block %d of %d: %w", i+1, n, err)
		}
		off += l
	}
	if off != len(b) {
		return 0, fmt.Errorf("write raw packet blocks: %d bytes after %d blocks: %w", len(b)-off, n, ErrBadBlock)
	}
	if err := w.write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// checkRawEPB checks the Enhanced Packet Block at the start of b and
// returns its length.
func (w *Writer) checkRawEPB(b []byte) (int, error) {
	if len(b) < 32 || le.Uint32(b) != blockEPB {
		return 0, fmt.Errorf("not an enhanced packet block: %w", ErrBadBlock)
	}
	n := int(le.Uint32(b[4:]))
	if n < 32 || n%4 != 0 || n > len(b) || int(le.Uint32(b[n-4:])) != n {
		return 0, fmt.Errorf("block length %d does not fit %d bytes: %w", n, len(b), ErrBadBlock)
	}
	if id := le.Uint32(b[8:]); int(id) >= len(w.ifaces) {
		return 0, fmt.Errorf("interface %d not added (have %d): %w", id, len(w.ifaces), ErrBadBlock)
	}
	return n, nil
}

// Flush writes buffered blocks to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}
