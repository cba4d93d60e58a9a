package perfring

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EventHeaderSize is the size of struct bpfcap_event (bpf/event.h).
const EventHeaderSize = 80

// Event flags, as bpf/event.h defines them (bpfcap_event.flags).
const (
	FlagHasReason  = 1 << 0 // Reason holds an skb_drop_reason
	FlagHasVerdict = 1 << 1 // Verdict holds an XDP or tc action
	FlagHasTask    = 1 << 2 // PID and Comm are set
	FlagUnfiltered = 1 << 3 // the kernel did not filter this packet
	FlagUndecided  = 1 << 4 // the kernel filter could not decide (filter.Undecided)
)

// Directions, as bpf/event.h defines them (bpfcap_event.dir).
const (
	DirUnknown = 0
	DirIn      = 1
	DirOut     = 2
)

// EventHeader mirrors struct bpfcap_event from bpf/event.h field by field
// (a test checks the layout against the BTF of a compiled object).
type EventHeader struct {
	Timestamp uint64 `btf:"ts"` // bpf_ktime_get_ns(), CLOCK_MONOTONIC
	PacketID  uint64 // the skb (or xdp_buff) address
	Hook      uint32
	WireLen   uint32
	CapLen    uint32
	Ifindex   uint32
	Netns     uint32
	Mark      uint32
	PID       uint32
	Reason    uint32
	Verdict   int32
	Queue     uint32
	LinkType  uint16
	Dir       uint8
	Flags     uint8
	Pad       uint32
	Comm      [16]byte
}

// Event is one decoded record: the header and the packet bytes.
type Event struct {
	EventHeader
	// Data holds CapLen bytes of packet data. It aliases the record
	// (for a ring buffer, the kernel's read-only mapped ring): it must not
	// be written to, and is only valid until the callback it was passed
	// to returns.
	Data []byte
}

// CommString returns Comm up to its first NUL.
func (h *EventHeader) CommString() string {
	for i, c := range h.Comm {
		if c == 0 {
			return string(h.Comm[:i])
		}
	}
	return string(h.Comm[:])
}

// ErrShortRecord is returned for records that are shorter than their header
// says.
var ErrShortRecord = errors.New("short bpfcap record")

// Decode decodes one raw record (as the kernel wrote it, in host byte
// order) into ev without allocating; ev.Data aliases raw.
func Decode(raw []byte, ev *Event) error {
	if len(raw) < EventHeaderSize {
		return fmt.Errorf("decode record of %d bytes (header is %d): %w", len(raw), EventHeaderSize, ErrShortRecord)
	}
	ne := binary.NativeEndian
	h := &ev.EventHeader
	h.Timestamp = ne.Uint64(raw[0:])
	h.PacketID = ne.Uint64(raw[8:])
	h.Hook = ne.Uint32(raw[16:])
	h.WireLen = ne.Uint32(raw[20:])
	h.CapLen = ne.Uint32(raw[24:])
	h.Ifindex = ne.Uint32(raw[28:])
	h.Netns = ne.Uint32(raw[32:])
	h.Mark = ne.Uint32(raw[36:])
	h.PID = ne.Uint32(raw[40:])
	h.Reason = ne.Uint32(raw[44:])
	h.Verdict = int32(ne.Uint32(raw[48:]))
	h.Queue = ne.Uint32(raw[52:])
	h.LinkType = ne.Uint16(raw[56:])
	h.Dir = raw[58]
	h.Flags = raw[59]
	h.Pad = ne.Uint32(raw[60:])
	copy(h.Comm[:], raw[64:80])
	if int(h.CapLen) > len(raw)-EventHeaderSize {
		return fmt.Errorf("decode record: cap_len %d but %d data bytes: %w", h.CapLen, len(raw)-EventHeaderSize, ErrShortRecord)
	}
	ev.Data = raw[EventHeaderSize : EventHeaderSize+int(h.CapLen)]
	return nil
}
