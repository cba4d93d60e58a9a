package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ngVersionReader passes a pcapng stream through, presenting sections of
// version 1.2 as 1.0: libpcap reads both alike (some writers stored 1.2),
// pcapgo takes only 1.0. It follows block lengths to find each Section
// Header Block.
type ngVersionReader struct {
	r       io.Reader
	order   binary.ByteOrder
	left    int    // bytes of the current block still to pass through
	pending []byte // bytes read ahead, already patched
}

func newNgVersionReader(r io.Reader) *ngVersionReader { return &ngVersionReader{r: r} }

func (v *ngVersionReader) Read(p []byte) (int, error) {
	if len(v.pending) == 0 && v.left == 0 {
		if err := v.nextBlock(); err != nil {
			return 0, err
		}
	}
	if len(v.pending) > 0 {
		n := copy(p, v.pending)
		v.pending = v.pending[n:]
		return n, nil
	}
	if len(p) > v.left {
		p = p[:v.left]
	}
	n, err := v.r.Read(p)
	v.left -= n
	if errors.Is(err, io.EOF) && v.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// nextBlock reads the next block's header (and a section header's fixed
// fields), patches the version, and sets how much of the block follows.
func (v *ngVersionReader) nextBlock() error {
	hdr := make([]byte, 8, 16)
	if _, err := io.ReadFull(v.r, hdr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("pcapng block header: %w", err)
		}
		return err // io.EOF between blocks: the end
	}
	if binary.LittleEndian.Uint32(hdr) == 0x0a0d0d0a {
		hdr = hdr[:16]
		if _, err := io.ReadFull(v.r, hdr[8:]); err != nil {
			return fmt.Errorf("pcapng section header: %w", io.ErrUnexpectedEOF)
		}
		v.order = binary.ByteOrder(binary.LittleEndian)
		if binary.BigEndian.Uint32(hdr[8:]) == 0x1a2b3c4d {
			v.order = binary.BigEndian
		}
		if v.order.Uint16(hdr[12:]) == 1 && v.order.Uint16(hdr[14:]) == 2 {
			v.order.PutUint16(hdr[14:], 0)
		}
	}
	if v.order == nil {
		return errors.New("pcapng: the stream does not start with a section header")
	}
	length := int(v.order.Uint32(hdr[4:]))
	if length < len(hdr) || length%4 != 0 {
		return fmt.Errorf("pcapng: bad block length %d", length)
	}
	v.pending, v.left = hdr, length-len(hdr)
	return nil
}
