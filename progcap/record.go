package progcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// RecordMagic and RecordVersion start every record (struct bpfcap_record
// in bpf/bpfcap.h).
const (
	RecordMagic   = 0x52435042
	RecordVersion = 1
)

// Layout of bpf/bpfcap.h's structs, from the declarations bpf2go generates
// (abi_*_bpfel.go) rather than by hand.
const (
	recordHeaderSize = uint32(unsafe.Sizeof(abiBpfcapRecord{}))
	configSize       = uint32(unsafe.Sizeof(abiBpfcapOutputConfig{}))
	bpfFMmapable     = 1 << 10

	// Offsets in struct bpfcap_record.
	recMagic    = unsafe.Offsetof(abiBpfcapRecord{}.Magic)
	recVersion  = unsafe.Offsetof(abiBpfcapRecord{}.Version)
	recLinkType = unsafe.Offsetof(abiBpfcapRecord{}.LinkType)
	recWireLen  = unsafe.Offsetof(abiBpfcapRecord{}.WireLen)
	recCapLen   = unsafe.Offsetof(abiBpfcapRecord{}.CapLen)
	recID       = unsafe.Offsetof(abiBpfcapRecord{}.Id)
	recTs       = unsafe.Offsetof(abiBpfcapRecord{}.Ts)

	// Offsets in struct bpfcap_output_config.
	cfgEnabled = int(unsafe.Offsetof(abiBpfcapOutputConfig{}.Enabled))
	cfgSnaplen = int(unsafe.Offsetof(abiBpfcapOutputConfig{}.Snaplen))
	cfgLost    = int(unsafe.Offsetof(abiBpfcapOutputConfig{}.Lost))
	cfgOwner   = int(unsafe.Offsetof(abiBpfcapOutputConfig{}.Owner))
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
	if len(raw) < int(recordHeaderSize) {
		return fmt.Errorf("record of %d bytes, header is %d: %w", len(raw), recordHeaderSize, ErrBadRecord)
	}
	ne := binary.NativeEndian
	if m := ne.Uint32(raw[recMagic:]); m != RecordMagic {
		return fmt.Errorf("magic %#x, want %#x: %w", m, RecordMagic, ErrBadRecord)
	}
	if v := ne.Uint16(raw[recVersion:]); v != RecordVersion {
		return fmt.Errorf("record version %d, this bpfcap reads %d (rebuild the program with its bpf/bpfcap.h): %w", v, RecordVersion, ErrBadRecord)
	}
	r.LinkType = ne.Uint16(raw[recLinkType:])
	r.WireLen = ne.Uint32(raw[recWireLen:])
	capLen := ne.Uint32(raw[recCapLen:])
	r.ID = ne.Uint64(raw[recID:])
	r.Timestamp = ne.Uint64(raw[recTs:])
	if int(capLen) > len(raw)-int(recordHeaderSize) {
		return fmt.Errorf("captured length %d, record holds %d bytes: %w", capLen, len(raw)-int(recordHeaderSize), ErrBadRecord)
	}
	r.Data = raw[recordHeaderSize : recordHeaderSize+capLen]
	return nil
}
