package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// pcapng block types.
const (
	ngBlockSection      = 0x0a0d0d0a
	ngBlockPacketObsol  = 2 // the obsolete Packet Block
	ngBlockSimplePacket = 3
	ngBlockEnhanced     = 6
)

// maxNgBlock bounds the length a pcapng block may claim, so that a damaged
// length cannot make the reader allocate gigabytes.
const maxNgBlock = 64 << 20

// ngBlockReader passes a pcapng stream to pcapgo block by block,
// presenting sections of version 1.2 as 1.0 (libpcap reads both alike,
// some writers stored 1.2, pcapgo takes only 1.0). With keep, it also
// queues every block as the stream has it, so that each packet pcapgo
// returns can be matched with its own block and the blocks before it:
// pcapgo reads ahead, but returns one packet per packet block, in order.
type ngBlockReader struct {
	r       io.Reader
	order   binary.ByteOrder
	pending []byte // the rest of the current block, patched

	keep   bool
	queue  []ngBlock
	header [8]byte
	buf    []byte // the block being passed on, without keep
}

// ngBlock is one block as the stream has it.
type ngBlock struct {
	raw    []byte
	packet bool // an Enhanced, Simple or obsolete Packet Block
}

func newNgBlockReader(r io.Reader, keep bool) *ngBlockReader {
	return &ngBlockReader{r: r, keep: keep}
}

func (v *ngBlockReader) Read(p []byte) (int, error) {
	if len(v.pending) == 0 {
		if err := v.nextBlock(); err != nil {
			return 0, err
		}
	}
	n := copy(p, v.pending)
	v.pending = v.pending[n:]
	return n, nil
}

// nextBlock reads the next block whole, queues it (with keep) and sets
// pending to its bytes with the section version patched.
func (v *ngBlockReader) nextBlock() error {
	hdr := v.header[:]
	if _, err := io.ReadFull(v.r, hdr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("pcapng block header: %w", err)
		}
		return err // io.EOF between blocks: the end
	}
	typ := binary.LittleEndian.Uint32(hdr)
	if typ == ngBlockSection {
		var bom [4]byte
		if _, err := io.ReadFull(v.r, bom[:]); err != nil {
			return fmt.Errorf("pcapng section header: %w", io.ErrUnexpectedEOF)
		}
		v.order = binary.ByteOrder(binary.LittleEndian)
		if binary.BigEndian.Uint32(bom[:]) == 0x1a2b3c4d {
			v.order = binary.BigEndian
		}
		hdr = append(hdr, bom[:]...)
	}
	if v.order == nil {
		return errors.New("pcapng: the stream does not start with a section header")
	}
	length := int(v.order.Uint32(hdr[4:]))
	if length < len(hdr) || length%4 != 0 || length > maxNgBlock {
		return fmt.Errorf("pcapng: bad block length %d", length)
	}
	var block []byte
	if v.keep {
		block = make([]byte, length) // queued: one buffer per block
	} else {
		if cap(v.buf) < length {
			v.buf = make([]byte, length)
		}
		block = v.buf[:length] // pcapgo has copied the previous block
	}
	copy(block, hdr)
	if _, err := io.ReadFull(v.r, block[len(hdr):]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("pcapng block of %d bytes: %w", length, err)
	}
	typ = v.order.Uint32(block)
	if v.keep {
		v.queue = append(v.queue, ngBlock{raw: block, packet: typ == ngBlockEnhanced || typ == ngBlockSimplePacket || typ == ngBlockPacketObsol})
	}
	if typ == ngBlockSection && length >= 16 && v.order.Uint16(block[12:]) == 1 && v.order.Uint16(block[14:]) == 2 {
		if v.keep {
			// The queue keeps the file's version.
			block = append([]byte(nil), block...)
		}
		v.order.PutUint16(block[14:], 0)
	}
	v.pending = block
	return nil
}

// upToPacket takes the queued blocks up to and including the first packet
// block: those of the packet pcapgo returned last.
func (v *ngBlockReader) upToPacket() ([][]byte, error) {
	for i, b := range v.queue {
		if b.packet {
			out := make([][]byte, i+1)
			for j := range out {
				out[j] = v.queue[j].raw
			}
			v.queue = v.queue[i+1:]
			return out, nil
		}
	}
	return nil, errors.New("pcapng: a packet without a packet block")
}

// rest takes the queued blocks: after the last packet, once pcapgo has
// read to the end.
func (v *ngBlockReader) rest() [][]byte {
	out := make([][]byte, len(v.queue))
	for i, b := range v.queue {
		out[i] = b.raw
	}
	v.queue = nil
	return out
}
