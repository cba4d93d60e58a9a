package perfring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// The event's C ABI, struct bpfcap_event and its enums in bpf/event.h,
// comes from the declarations bpf2go generates (abi_*_bpfel.go): sizes,
// offsets and values below are taken from them, not written by hand.

// EventHeaderSize is the size of struct bpfcap_event (bpf/event.h).
const EventHeaderSize = int(unsafe.Sizeof(abiBpfcapEvent{}))

// Event flags, as bpf/event.h defines them (bpfcap_event.flags).
const (
	FlagHasReason  = uint8(abiBpfcapEventFlagBPFCAP_EV_HAS_REASON)  // Reason holds an skb_drop_reason
	FlagHasVerdict = uint8(abiBpfcapEventFlagBPFCAP_EV_HAS_VERDICT) // Verdict holds an XDP or tc action
	FlagHasTask    = uint8(abiBpfcapEventFlagBPFCAP_EV_HAS_TASK)    // PID and Comm are set
	FlagUnfiltered = uint8(abiBpfcapEventFlagBPFCAP_EV_UNFILTERED)  // the kernel did not filter this packet
	FlagUndecided  = uint8(abiBpfcapEventFlagBPFCAP_EV_UNDECIDED)   // the kernel filter could not decide (filter.Undecided)
	FlagTracked    = uint8(abiBpfcapEventFlagBPFCAP_EV_TRACKED)     // PacketID (and ParentID) are tracking ids
	FlagHasStack   = uint8(abiBpfcapEventFlagBPFCAP_EV_HAS_STACK)   // stacks are recorded: StackID, when not negative, names one
)

// Directions, as bpf/event.h defines them (bpfcap_event.dir).
const (
	DirUnknown = uint8(abiBpfcapDirBPFCAP_DIR_UNKNOWN)
	DirIn      = uint8(abiBpfcapDirBPFCAP_DIR_IN)
	DirOut     = uint8(abiBpfcapDirBPFCAP_DIR_OUT)
)

// Offsets of struct bpfcap_event's fields, for Decode.
const (
	offTs       = unsafe.Offsetof(abiBpfcapEvent{}.Ts)
	offPacketID = unsafe.Offsetof(abiBpfcapEvent{}.PacketId)
	offHook     = unsafe.Offsetof(abiBpfcapEvent{}.Hook)
	offWireLen  = unsafe.Offsetof(abiBpfcapEvent{}.WireLen)
	offCapLen   = unsafe.Offsetof(abiBpfcapEvent{}.CapLen)
	offIfindex  = unsafe.Offsetof(abiBpfcapEvent{}.Ifindex)
	offNetns    = unsafe.Offsetof(abiBpfcapEvent{}.Netns)
	offMark     = unsafe.Offsetof(abiBpfcapEvent{}.Mark)
	offPID      = unsafe.Offsetof(abiBpfcapEvent{}.Pid)
	offReason   = unsafe.Offsetof(abiBpfcapEvent{}.Reason)
	offVerdict  = unsafe.Offsetof(abiBpfcapEvent{}.Verdict)
	offQueue    = unsafe.Offsetof(abiBpfcapEvent{}.Queue)
	offLinkType = unsafe.Offsetof(abiBpfcapEvent{}.Linktype)
	offDir      = unsafe.Offsetof(abiBpfcapEvent{}.Dir)
	offFlags    = unsafe.Offsetof(abiBpfcapEvent{}.Flags)
	offPad      = unsafe.Offsetof(abiBpfcapEvent{}.Pad)
	offComm     = unsafe.Offsetof(abiBpfcapEvent{}.Comm)
	offParentID = unsafe.Offsetof(abiBpfcapEvent{}.ParentId)
	offLocation = unsafe.Offsetof(abiBpfcapEvent{}.Location)
	offStackID  = unsafe.Offsetof(abiBpfcapEvent{}.StackId)
	offPad2     = unsafe.Offsetof(abiBpfcapEvent{}.Pad2)
)

// EventHeader is a decoded struct bpfcap_event (bpf/event.h): the fields
// of the generated declaration, in its order, with Go names and Comm as
// bytes (tests check both against the BTF of a compiled object).
type EventHeader struct {
	Timestamp uint64 `btf:"ts"` // bpf_ktime_get_ns(), CLOCK_MONOTONIC
	PacketID  uint64 // the skb (or xdp_buff) address, or a tracking id (FlagTracked)
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
	ParentID  uint64 // tracking id of the packet this one is a clone of (0: none)
	Location  uint64 // kernel text address that freed the skb (0: unknown)
	StackID   int32  // kernel stack id, with FlagHasStack (negative: none recorded)
	Pad2      uint32
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
	h.Timestamp = ne.Uint64(raw[offTs:])
	h.PacketID = ne.Uint64(raw[offPacketID:])
	h.Hook = ne.Uint32(raw[offHook:])
	h.WireLen = ne.Uint32(raw[offWireLen:])
	h.CapLen = ne.Uint32(raw[offCapLen:])
	h.Ifindex = ne.Uint32(raw[offIfindex:])
	h.Netns = ne.Uint32(raw[offNetns:])
	h.Mark = ne.Uint32(raw[offMark:])
	h.PID = ne.Uint32(raw[offPID:])
	h.Reason = ne.Uint32(raw[offReason:])
	h.Verdict = int32(ne.Uint32(raw[offVerdict:]))
	h.Queue = ne.Uint32(raw[offQueue:])
	h.LinkType = ne.Uint16(raw[offLinkType:])
	h.Dir = raw[offDir]
	h.Flags = raw[offFlags]
	h.Pad = ne.Uint32(raw[offPad:])
	copy(h.Comm[:], raw[offComm:offComm+uintptr(len(h.Comm))])
	h.ParentID = ne.Uint64(raw[offParentID:])
	h.Location = ne.Uint64(raw[offLocation:])
	h.StackID = int32(ne.Uint32(raw[offStackID:]))
	h.Pad2 = ne.Uint32(raw[offPad2:])
	if int(h.CapLen) > len(raw)-EventHeaderSize {
		return fmt.Errorf("decode record: cap_len %d but %d data bytes: %w", h.CapLen, len(raw)-EventHeaderSize, ErrShortRecord)
	}
	ev.Data = raw[EventHeaderSize : EventHeaderSize+int(h.CapLen)]
	return nil
}
