package filter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// FileFormat is what libpcap compiles a filter for a capture file's
// interface with (tcpdump -r): its link type, its snap length (as libpcap
// adjusts it) and whether the file's byte order is the other one than
// this host's.
type FileFormat struct {
	// LinkType is the interface's link type (a DLT_ value).
	LinkType LinkType
	// Snaplen is the interface's snap length, as libpcap adjusts it.
	Snaplen int
	// Swapped: the file is in the other byte order than this host's.
	Swapped bool
}

// FilePacket is one packet read from a capture file.
type FilePacket struct {
	// Data is the captured bytes, as libpcap gives them (cut to the
	// interface's snap length), valid until the next packet is read.
	Data []byte
	// WireLen is the length on the wire the file gives (libpcap's
	// `len`); files may give less than len(Data).
	WireLen int
	// Timestamp is the packet's time.
	Timestamp time.Time
	// Format is the format of the packet's interface.
	Format FileFormat
	// Blocks holds, for pcapng input read with keepBlocks, the blocks
	// read since the previous packet returned, byte for byte as the file
	// has them (options, byte order, version and all), without the
	// packet blocks of packets that did not match (FileRunner), the last
	// one the packet's own. Nil for pcap input.
	Blocks [][]byte
}

// ErrUnknownLinkType is wrapped when a capture file names a link type
// that cannot be one.
var ErrUnknownLinkType = errors.New("unknown link type")

// maxSnaplen is libpcap's MAXIMUM_SNAPLEN: files that give no snap length,
// or a larger one, are read with this one.
const maxSnaplen = 262144

// adjustSnaplen is libpcap's pcap_adjust_snapshot for a file's snap length.
func adjustSnaplen(snap uint32) int {
	if snap == 0 || snap > maxSnaplen {
		return maxSnaplen
	}
	return int(snap)
}

// FileReader reads the packets of a pcap or pcapng stream as libpcap reads
// them (tcpdump -r). Pcap files, in every variant (microsecond,
// nanosecond, the modified-pcap magic a1b2cd34, versions 2.2 and 2.3,
// either byte order), are read by libpcap itself (pcap_fopen_offline), so
// records are what tcpdump -r sees: cut to the file's snap length, caplen
// larger than the wire length kept. Pcapng files are read with pcapgo,
// which also takes sections and interfaces of different link types
// (libpcap 1.10 refuses those), with libpcap's cut of each record to its
// interface's snap length; sections of version 1.2 are read as 1.0, as
// libpcap reads them.
type FileReader struct {
	pcap *pcapFile
	pipe *os.File // libpcap's input when the stream is not a regular file

	ng      *pcapgo.NgReader
	blocks  *ngBlockReader
	swapped bool
	ngCount uint64   // pcapng packets read
	carry   [][]byte // blocks of skipped packets' predecessors
}

// NewFileReader starts reading a capture file from r. With keepBlocks,
// a pcapng file's packets come with their raw blocks (FilePacket.Blocks,
// Rest). Errors: the stream is neither pcap nor pcapng, or its header is
// damaged (a link type above 65535 wraps ErrUnknownLinkType).
func NewFileReader(r io.Reader, keepBlocks bool) (*FileReader, error) {
	// A regular file goes to libpcap as it is (no pipe), from where it
	// started, once the header has been looked at.
	file, start := regularFile(r)
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read capture file header: %w", err)
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		opts := pcapgo.DefaultNgReaderOptions
		opts.WantMixedLinkType = true
		shb, err := br.Peek(12)
		if err != nil {
			return nil, fmt.Errorf("read pcapng: %w", err)
		}
		blocks := newNgBlockReader(br, keepBlocks)
		ng, err := pcapgo.NewNgReader(blocks, opts)
		if err != nil {
			return nil, fmt.Errorf("read pcapng: %w", err)
		}
		// The byte-order magic of the first section.
		return &FileReader{ng: ng, blocks: blocks, swapped: binary.NativeEndian.Uint32(shb[8:]) != 0x1a2b3c4d}, nil
	}
	// The header's link type field is 32 bits: the low 26 are the link
	// type (libpcap's LT_LINKTYPE), the top ones FCS information.
	// gopacket's Handle.LinkType keeps 16 bits, which would read 65537
	// as Ethernet; tcpdump refuses such a file ("unknown data link
	// type"), and so does the reader.
	if hdr, err := br.Peek(24); err == nil {
		var bo binary.ByteOrder = binary.LittleEndian
		switch binary.BigEndian.Uint32(hdr) {
		case 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34:
			bo = binary.BigEndian
		}
		if lt := bo.Uint32(hdr[20:]) & 0x03ffffff; lt > 0xffff {
			return nil, fmt.Errorf("link type %d: no link type is above 65535 (a damaged header?): %w", lt, ErrUnknownLinkType)
		}
	}
	swapped := false
	switch binary.NativeEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34: // microseconds, nanoseconds, modified pcap
	default:
		swapped = true
	}
	if file != nil {
		if _, err := file.Seek(start, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewind capture file: %w", err)
		}
		pf, err := openPcapFile(file.Fd(), swapped)
		if err != nil {
			return nil, fmt.Errorf("not a pcap or pcapng file libpcap reads: %w", err)
		}
		return &FileReader{pcap: pf}, nil
	}
	// libpcap reads from a FILE*: hand it the stream through a pipe,
	// with the bytes already peeked at.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe to libpcap: %w", err)
	}
	go func() {
		// Ends at the end of the input, or when Close closes the
		// reading end (EPIPE).
		io.Copy(pw, br)
		pw.Close()
	}()
	pf, err := openPcapFile(pr.Fd(), swapped)
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("not a pcap or pcapng file libpcap reads: %w", err)
	}
	return &FileReader{pcap: pf, pipe: pr}, nil
}

// regularFile returns r and its offset if r is a regular file.
func regularFile(r io.Reader) (*os.File, int64) {
	f, ok := r.(*os.File)
	if !ok {
		return nil, 0
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, 0
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0
	}
	return f, off
}

// Pcapng reports whether the file is pcapng.
func (fr *FileReader) Pcapng() bool { return fr.ng != nil }

// First returns the format of a pcap file's interface, known before any
// packet; false for pcapng, whose interfaces come with the packets.
func (fr *FileReader) First() (FileFormat, bool) {
	if fr.pcap == nil {
		return FileFormat{}, false
	}
	return fr.pcap.format, true
}

// Next returns the next packet, or io.EOF after the last. Errors: the
// file is damaged or truncated (a pcapng record longer than its
// interface's snap length is one: libpcap refuses it too).
func (fr *FileReader) Next() (FilePacket, error) {
	for {
		p, _, _, err := fr.next()
		if err != errBatchEmpty {
			return p, err
		}
	}
}

// next is Next that also returns the packet's number in the file (from 1)
// and libpcap's verdict when the pcap reader runs a filter (see
// pcapFile.setFilter); it may return errBatchEmpty.
func (fr *FileReader) next() (FilePacket, bool, uint64, error) {
	if fr.pcap != nil {
		return fr.pcap.next()
	}
	p, err := fr.nextNg()
	if err != nil {
		return FilePacket{}, false, 0, err
	}
	fr.ngCount++
	return p, false, fr.ngCount, nil
}

// skip drops a packet Next returned from the blocks still to come: its
// own block goes, the blocks before it come with the next packet (or
// Rest).
func (fr *FileReader) skip(p FilePacket) {
	if len(p.Blocks) > 0 {
		fr.carry = append(fr.carry, p.Blocks[:len(p.Blocks)-1]...)
	}
}

// nextNg reads the next packet of a pcapng file.
func (fr *FileReader) nextNg() (FilePacket, error) {
	data, ci, err := fr.ng.ZeroCopyReadPacketData()
	if err != nil {
		return FilePacket{}, err
	}
	intf, err := fr.ng.Interface(ci.InterfaceIndex)
	if err != nil {
		return FilePacket{}, fmt.Errorf("pcapng interface %d: %w", ci.InterfaceIndex, err)
	}
	if intf.SnapLength != 0 && len(data) > int(intf.SnapLength) {
		return FilePacket{}, fmt.Errorf("captured length %d is more than its interface's snap length %d (a damaged file; libpcap refuses it too)", len(data), intf.SnapLength)
	}
	snap := adjustSnaplen(intf.SnapLength)
	if len(data) > snap {
		// Interfaces without a snap length (or a larger one than
		// libpcap's largest): libpcap cuts the record to its own.
		data = data[:snap]
	}
	p := FilePacket{Data: data, WireLen: ci.Length, Timestamp: ci.Timestamp, Format: FileFormat{
		LinkType: LinkTypeFromFile(uint32(intf.LinkType)), Snaplen: snap, Swapped: fr.swapped,
	}}
	if fr.blocks.keep {
		blocks, err := fr.blocks.upToPacket()
		if err != nil {
			return FilePacket{}, err
		}
		p.Blocks = append(fr.carry, blocks...)
		fr.carry = nil
	}
	return p, nil
}

// Rest returns, for pcapng input read with KeepBlocks, the blocks after
// the last packet (statistics, name resolution, ...), once Next has
// returned io.EOF.
func (fr *FileReader) Rest() [][]byte {
	if fr.blocks == nil {
		return nil
	}
	rest := append(fr.carry, fr.blocks.rest()...)
	fr.carry = nil
	return rest
}

// Close releases libpcap's handle. It does not close the input.
func (fr *FileReader) Close() error {
	if fr.pcap != nil {
		fr.pcap.close()
		if fr.pipe != nil {
			return fr.pipe.Close()
		}
	}
	return nil
}
