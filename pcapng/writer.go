package pcapng

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
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
// The output only ever ends with a whole block. Blocks are buffered whole;
// when a write to the underlying writer fails part-way (a full disk), a
// Writer whose output is an *os.File (or has Truncate and Seek) cuts the
// output back to the last whole block. The packets lost that way are
// counted (Unwritten, and in each interface's statistics), and Resume lets
// the statistics be tried once more, as they may fit where a packet did
// not.
type Writer struct {
	out    io.Writer
	trunc  truncater // nil: the output cannot be cut back (a pipe)
	size   int
	buf    []byte      // whole blocks not yet written to out
	marks  []blockMark // where each block in buf ends
	off    int64       // where buf starts in out (trunc only)
	ifaces []Interface
	// unwritten counts, per interface, packets accepted but lost to a
	// failed write; inOut the packets in out.
	unwritten []uint64
	inOut     []uint64
	failed    bool // a write failed: statistics report what out holds
	bb        blockBuf
	cb        []byte // comment scratch
	netns     decimalCache
	err       error // sticky write error
	partial   bool  // out ends with part of a block
	idbOut    int   // Interface Description Blocks in out
}

// blockMark is the end of one block in Writer.buf and, for a packet, its
// interface (markIDB for an interface description, -1 otherwise).
type blockMark struct {
	end   int
	iface int32
}

// isbRoom is what a Writer keeps free per interface, on an output that
// failed, for its Interface Statistics Block (about 200 bytes).
const isbRoom = 256

// markIDB marks an Interface Description Block in Writer.marks.
const markIDB = -2

// truncater is an output a Writer can cut back to a block boundary.
type truncater interface {
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
}

// NewWriter writes the Section Header Block to w and flushes it, so a
// reader at the other end of a pipe recognises the format at once.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	size := opts.BufferSize
	if size <= 0 {
		size = 64 << 10
	}
	pw := &Writer{out: w, size: size, buf: make([]byte, 0, size)}
	if t, ok := w.(truncater); ok {
		// Only a seekable output (a regular file) can be cut back.
		if off, err := t.Seek(0, io.SeekCurrent); err == nil {
			pw.trunc, pw.off = t, off
		}
	}
	bb := &pw.bb
	bb.start(blockSHB)
	bb.u32(byteOrderMagic)
	bb.u16(1) // major
	bb.u16(0) // minor
	bb.u64(^uint64(0))
	hasOpts := opts.Application != "" || opts.OS != ""
	bb.optString(3, opts.OS) // shb_os
	bb.optString(optSHBUserAppl, opts.Application)
	if err := pw.write(bb.finish(hasOpts), -1); err != nil {
		return nil, fmt.Errorf("write pcapng section header: %w", err)
	}
	if err := pw.Flush(); err != nil {
		return nil, fmt.Errorf("write pcapng section header: %w", err)
	}
	return pw, nil
}

// write buffers one whole block (iface: the packet's interface, or -1)
// and writes the buffer out once it is full. A block it buffered counts as
// accepted: if writing the buffer out fails, the packets lost are counted
// in Unwritten and the error comes back from the next call (or Flush).
func (w *Writer) write(b []byte, iface int) error {
	if w.err != nil {
		return w.err
	}
	w.buf = append(w.buf, b...)
	w.added(iface)
	return nil
}

// added records the block that now ends the buffer (iface as for write)
// and writes the buffer out once it is full.
func (w *Writer) added(iface int) {
	w.marks = append(w.marks, blockMark{end: len(w.buf), iface: int32(iface)})
	if len(w.buf) >= w.size {
		w.flush()
	}
}

// flush writes the buffer out. On a failed write it keeps the output at
// the last whole block (cutting a partial one off where it can) and counts
// the packets that did not make it.
func (w *Writer) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.out.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		for _, m := range w.marks {
			w.count(m)
		}
		w.off += int64(n)
		w.buf, w.marks = w.buf[:0], w.marks[:0]
		return nil
	}
	keep := 0
	for _, m := range w.marks {
		switch {
		case m.end <= n:
			keep = m.end
		case m.iface >= 0 && int(m.iface) < len(w.unwritten):
			w.unwritten[m.iface]++
		}
	}
	if w.trunc != nil && !errors.Is(err, syscall.EPIPE) {
		// Make room for the statistics blocks (Resume): give up the last
		// packets of this buffer, counted like the others.
		room := isbRoom * len(w.ifaces)
		for i := len(w.marks) - 1; i >= 0 && n-keep < room; i-- {
			m := w.marks[i]
			if m.end > keep {
				continue
			}
			if m.iface < 0 || m.end != keep {
				break
			}
			w.unwritten[m.iface]++
			keep = 0
			if i > 0 {
				keep = w.marks[i-1].end
			}
		}
	}
	for _, m := range w.marks {
		if m.end <= keep {
			w.count(m)
		}
	}
	w.failed = true
	if n > keep {
		w.partial = true
		if w.trunc != nil {
			end := w.off + int64(keep)
			if w.trunc.Truncate(end) == nil {
				if _, serr := w.trunc.Seek(end, io.SeekStart); serr == nil {
					w.partial = false
				}
			}
		}
	}
	w.off += int64(keep)
	w.buf, w.marks = w.buf[:0], w.marks[:0]
	w.err = err
	return err
}

// count counts a block that reached the output.
func (w *Writer) count(m blockMark) {
	switch {
	case m.iface == markIDB:
		w.idbOut++
	case m.iface >= 0 && int(m.iface) < len(w.inOut):
		w.inOut[m.iface]++
	}
}

// idbBuffered counts the Interface Description Blocks in the buffer.
func (w *Writer) idbBuffered() int {
	n := 0
	for _, m := range w.marks {
		if m.iface == markIDB {
			n++
		}
	}
	return n
}

// Unwritten returns the number of packets that WritePacket or
// WriteRawPackets accepted but a failed write lost.
func (w *Writer) Unwritten() uint64 {
	var n uint64
	for _, u := range w.unwritten {
		n += u
	}
	return n
}

// Resume clears the error of a failed write when the output still ends
// with a whole block, so the statistics can be tried (on a full disk they
// often fit where a packet did not; if they do not, they are cut off
// again). It returns the write error when the output cannot be resumed:
// it ends with part of a block, or its reader went away.
func (w *Writer) Resume() error {
	if w.err == nil {
		return nil
	}
	if w.partial || w.trunc == nil {
		return w.err
	}
	w.err = nil
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
	bb.optString(optIfDescription, ifc.description())
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
	if err := w.write(bb.finish(true), markIDB); err != nil {
		return 0, fmt.Errorf("write pcapng interface %q: %w", ifc.Name, err)
	}
	w.ifaces = append(w.ifaces, ifc)
	w.unwritten = append(w.unwritten, 0)
	w.inOut = append(w.inOut, 0)
	return len(w.ifaces) - 1, nil
}

// Interfaces returns the interfaces added so far, by index.
func (w *Writer) Interfaces() []Interface { return w.ifaces }

// WritePacket writes p as an Enhanced Packet Block with its options and,
// when p has metadata that no option carries, a readable comment. Data beyond the interface's snap length is not
// stored. The block is built in place in the output buffer, so p.Data is
// copied once, and nothing is allocated once the buffers have grown.
// (writev of the packet where it lies would save that copy, but it costs
// more than the copy for small packets and no less for 1000-byte ones:
// BenchmarkOutputCopy; and the ring would have to hold every record until
// its write returned.)
func (w *Writer) WritePacket(p *Packet) error {
	if p.Interface < 0 || p.Interface >= len(w.ifaces) {
		return fmt.Errorf("write packet: interface %d not added (have %d)", p.Interface, len(w.ifaces))
	}
	if w.err != nil {
		return w.err
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
	bb := blockBuf{b: w.buf}
	base := bb.begin(blockEPB)
	bb.u32(uint32(p.Interface))
	ts := uint64(p.Timestamp.UnixNano())
	bb.u32(uint32(ts >> 32))
	bb.u32(uint32(ts))
	bb.u32(uint32(len(data)))
	bb.u32(uint32(wire))
	bb.bytes(data)

	opts := len(bb.b)
	bb.comment(ifc, p, &w.netns)
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
	bb.end(base, len(bb.b) > opts)
	w.buf = bb.b
	w.added(p.Interface)
	return nil
}

// comment appends p's opt_comment, built in place: the readable metadata
// that no standard option and no interface field carries (appendComment).
// It appends nothing when there is none.
func (bb *blockBuf) comment(ifc *Interface, p *Packet, netns *decimalCache) {
	hook, dev, ns := commentNames(ifc, p)
	if !hook && !dev && !ns && p.DropReason == "" && p.Flags&(HasPID|HasMark) == 0 && p.Comment == "" {
		return // most packets of a capture point on one device
	}
	at := len(bb.b)
	bb.optHeader(optComment, 0)
	bb.b = appendComment(bb.b, ifc, p, netns)
	n := len(bb.b) - at - 4
	switch {
	case n == 0:
		bb.b = bb.b[:at]
		return
	case n > 0xffff:
		bb.b = bb.b[:at+4+0xffff]
		n = 0xffff
	}
	le.PutUint16(bb.b[at+2:], uint16(n))
	bb.optPad(n)
}

// appendComment appends the readable metadata of p that has no standard
// place: drop reason, device, task, netns, mark and the free-form
// comment; and the hook, only when p names one other than its interface
// (ifc). What pcapng has a field for is left to it: the hook is the
// interface's if_name, the direction epb_flags, the verdict epb_verdict,
// the packet id epb_packetid; and so are a device and netns that the
// interface names for all its packets (Interface.Device, Netns). netns
// keeps the text of the last netns.
func appendComment(b []byte, ifc *Interface, p *Packet, netns *decimalCache) []byte {
	hook, dev, ns := commentNames(ifc, p)
	start := len(b)
	field := func(b []byte, key string) []byte {
		if len(b) > start {
			b = append(b, ' ')
		}
		b = append(b, key...)
		return append(b, '=')
	}
	if hook {
		b = field(b, "hook")
		b = append(b, p.Hook...)
	}
	if p.DropReason != "" {
		b = field(b, "reason")
		b = append(b, p.DropReason...)
	}
	if dev {
		b = field(b, "dev")
		b = append(b, p.Device...)
	}
	if p.Flags&HasPID != 0 {
		b = field(b, "pid")
		b = strconv.AppendUint(b, uint64(p.PID), 10)
		if p.Comm != "" {
			b = field(b, "comm")
			b = append(b, p.Comm...)
		}
	}
	if ns {
		b = field(b, "netns")
		b = netns.append(b, p.Netns)
	}
	if p.Flags&HasMark != 0 {
		b = field(b, "mark")
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, uint64(p.Mark), 16)
	}
	if p.Comment != "" {
		if len(b) > start {
			b = append(b, ' ')
		}
		b = append(b, p.Comment...)
	}
	return b
}

// commentNames says whether p's comment names its hook, device and netns:
// each only when p has one and its interface (ifc) does not name the same.
func commentNames(ifc *Interface, p *Packet) (hook, dev, netns bool) {
	return p.Hook != "" && p.Hook != ifc.Name,
		p.Device != "" && p.Device != ifc.Device,
		p.Flags&HasNetns != 0 && (ifc.Netns == 0 || p.Netns != ifc.Netns)
}

// decimalCache holds the decimal text of the last number it formatted:
// consecutive packets mostly share a netns, and formatting its ten-digit
// inode number costs more than the rest of a comment.
type decimalCache struct {
	v    uint32
	text []byte
}

// append appends the decimal text of v.
func (c *decimalCache) append(b []byte, v uint32) []byte {
	if len(c.text) == 0 || c.v != v {
		c.v, c.text = v, strconv.AppendUint(c.text[:0], uint64(v), 10)
	}
	return append(b, c.text...)
}

// WriteStats writes an Interface Statistics Block for interface ifIndex
// taken at ts, covering the capture since start (zero: not written).
func (w *Writer) WriteStats(ifIndex int, start, ts time.Time, s InterfaceStats) error {
	if ifIndex < 0 || ifIndex >= len(w.ifaces) {
		return fmt.Errorf("write statistics: interface %d not added (have %d)", ifIndex, len(w.ifaces))
	}
	if ifIndex >= w.idbOut+w.idbBuffered() {
		return nil // its description was lost to a failed write: a reader would refuse the block
	}
	bb := &w.bb
	bb.start(blockISB)
	bb.u32(uint32(ifIndex))
	ns := uint64(ts.UnixNano())
	bb.u32(uint32(ns >> 32))
	bb.u32(uint32(ns))
	// After a failed write, the statistics say what the output holds:
	// packets captured but not in it are counted apart.
	var unwritten uint64
	if w.failed {
		if held := w.inOut[ifIndex]; s.Captured > held {
			unwritten = s.Captured - held
			s.Captured = held
		}
	}
	w.cb = w.cb[:0]
	if s.UserFiltered != 0 {
		w.cb = append(w.cb, "filtered in userspace: "...)
		w.cb = strconv.AppendUint(w.cb, s.UserFiltered, 10)
	}
	if s.Shed != 0 {
		if len(w.cb) > 0 {
			w.cb = append(w.cb, "; "...)
		}
		w.cb = append(w.cb, "shed by the rate bound: "...)
		w.cb = strconv.AppendUint(w.cb, s.Shed, 10)
	}
	if unwritten != 0 {
		if len(w.cb) > 0 {
			w.cb = append(w.cb, "; "...)
		}
		w.cb = append(w.cb, "captured but not written (output failed): "...)
		w.cb = strconv.AppendUint(w.cb, unwritten, 10)
	}
	if len(w.cb) > 0 {
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
	bb.optU64(optISBOSDrop, s.Skipped+s.Shed)
	bb.optU64(optISBUsrDeliv, s.Captured)
	if err := w.write(bb.finish(true), -1); err != nil {
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
	iface := -1
	if typ := le.Uint32(b); typ == blockEPB || typ == blockISB {
		if len(b) < 16 {
			return fmt.Errorf("write raw block: %w", ErrBadBlock)
		}
		id := le.Uint32(b[8:])
		if int(id) >= len(w.ifaces) {
			return fmt.Errorf("write raw block: interface %d not added (have %d)", id, len(w.ifaces))
		}
		if typ == blockEPB {
			iface = int(id)
		}
	}
	return w.write(b, iface)
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
	if w.err != nil {
		return 0, w.err
	}
	base := len(w.buf)
	w.buf = append(w.buf, b...)
	for off := 0; off < len(b); {
		l := int(le.Uint32(b[off+4:]))
		off += l
		w.marks = append(w.marks, blockMark{end: base + off, iface: int32(le.Uint32(b[off-l+8:]))})
	}
	if len(w.buf) >= w.size {
		w.flush() // accepted: what a failure loses is counted in Unwritten
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
func (w *Writer) Flush() error { return w.flush() }
