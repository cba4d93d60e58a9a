package progcap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of bpf/bpfcap.h.
const (
	// RecordMagic and RecordVersion start every record (struct bpfcap_record).
	RecordMagic   = 0x52435042
	RecordVersion = 1

	recordHeaderSize = 32 // sizeof(struct bpfcap_record)
	configSize       = 32 // sizeof(struct bpfcap_output_config)
	bpfFMmapable     = 1 << 10

	// Offsets in struct bpfcap_output_config.
	cfgEnabled = 0
	cfgSnaplen = 4
	cfgLost    = 8
	cfgOwner   = 16
)

// Record is one decoded bpfcap_output() record.
type Record struct {
	// LinkType is the pcap LINKTYPE_ of the first byte.
	LinkType uint16
	// WireLen is the packet length the program gave (max_len).
	WireLen uint32
	// ID is the program's id_flags.
	ID uint64
	// Timestamp is bpf_ktime_get_ns() (CLOCK_MONOTONIC) at output.
	Timestamp uint64
	// Data holds the captured bytes; it aliases the raw record.
	Data []byte
}

// ErrBadRecord is wrapped by DecodeRecord's errors.
var ErrBadRecord = errors.New("bad bpfcap_output record")

// DecodeRecord decodes a raw ring buffer record (host byte order) into r
// without copying: r.Data aliases raw.
func DecodeRecord(raw []byte, r *Record) error {
	if len(raw) < recordHeaderSize {
		return fmt.Errorf("record of %d bytes, header is %d: %w", len(raw), recordHeaderSize, ErrBadRecord)
	}
	ne := binary.NativeEndian
	if m := ne.Uint32(raw[0:]); m != RecordMagic {
		return fmt.Errorf("magic %#x, want %#x: %w", m, RecordMagic, ErrBadRecord)
	}
	if v := ne.Uint16(raw[4:]); v != RecordVersion {
		return fmt.Errorf("record version %d, this bpfcap reads %d (rebuild the program with its bpf/bpfcap.h): %w", v, RecordVersion, ErrBadRecord)
	}
	r.LinkType = ne.Uint16(raw[6:])
	r.WireLen = ne.Uint32(raw[8:])
	capLen := ne.Uint32(raw[12:])
	r.ID = ne.Uint64(raw[16:])
	r.Timestamp = ne.Uint64(raw[24:])
	if int(capLen) > len(raw)-recordHeaderSize {
		return fmt.Errorf("captured length %d, record holds %d bytes: %w", capLen, len(raw)-recordHeaderSize, ErrBadRecord)
	}
	r.Data = raw[recordHeaderSize : recordHeaderSize+int(capLen)]
	return nil
}
