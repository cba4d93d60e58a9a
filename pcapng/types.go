package pcapng

import (
	"net"
	"time"

	"github.com/bpfcap/bpfcap/linktype"
)

// LinkType is a pcap LINKTYPE_* value as stored in an Interface
// Description Block.
type LinkType uint16

// Link types bpfcap writes (the table of package linktype).
const (
	LinkTypeEthernet  LinkType = linktype.Ethernet  // LINKTYPE_ETHERNET
	LinkTypeRaw       LinkType = linktype.Raw       // LINKTYPE_RAW: IPv4 or IPv6, no link header
	LinkTypeIEEE80211 LinkType = linktype.IEEE80211 // LINKTYPE_IEEE802_11
	LinkTypeLinuxSLL  LinkType = linktype.LinuxSLL  // LINKTYPE_LINUX_SLL: 16-byte Linux cooked header
	LinkTypeIPv4      LinkType = linktype.IPv4      // LINKTYPE_IPV4
	LinkTypeIPv6      LinkType = linktype.IPv6      // LINKTYPE_IPV6
	LinkTypeLinuxSLL2 LinkType = linktype.LinuxSLL2 // LINKTYPE_LINUX_SLL2
)

// String returns the link type's short name (as `proto` spells it) or its
// number.
func (lt LinkType) String() string {
	if e, ok := linktype.ByLinkType(uint16(lt)); ok {
		return e.Proto
	}
	return "linktype" + itoa(uint64(lt))
}

// Direction is where a packet was going relative to its hook (epb_flags
// bits 0-1).
type Direction uint8

// Directions, as pcapng encodes them.
const (
	DirectionUnknown  Direction = 0
	DirectionInbound  Direction = 1
	DirectionOutbound Direction = 2
)

// String returns "in", "out" or "".
func (d Direction) String() string {
	switch d {
	case DirectionInbound:
		return "in"
	case DirectionOutbound:
		return "out"
	}
	return ""
}

// VerdictType says what a packet's verdict value means (the first byte of
// an epb_verdict option).
type VerdictType uint8

// Verdict types defined by pcapng. VerdictNone means the packet has no
// verdict.
const (
	VerdictHardware VerdictType = 0 // opaque hardware verdict (not written by bpfcap)
	VerdictTC       VerdictType = 1 // Linux tc action (TC_ACT_*)
	VerdictXDP      VerdictType = 2 // XDP action (XDP_*)
	VerdictNone     VerdictType = 0xff
)

// Interface describes one capture point: one Interface Description Block.
// bpfcap writes one per (hook, link type).
type Interface struct {
	// Name is the hook spec, e.g. "tp_btf:kfree_skb" (if_name).
	Name string
	// Description says more about the hook (if_description).
	Description string
	// LinkType is the link type of every packet on this interface.
	LinkType LinkType
	// SnapLen is the largest number of bytes stored per packet (0: none).
	SnapLen uint32
	// Filter is the capture filter expression (if_filter, type 0), if any.
	Filter string
	// MAC is the device address (if_MACaddr), if known.
	MAC net.HardwareAddr
	// Speed is the link speed in bits per second (if_speed), if known.
	Speed uint64
	// OS is written as if_os when set.
	OS string
	// Device and Netns are the device and network namespace (inode) of
	// every packet of a capture point that sees one device (tc or XDP on
	// a device, a probe restricted to one): written once, at the end of
	// if_description as "dev=NAME netns=INODE", instead of in each
	// packet's comment. A Writer leaves them out of the comment of a
	// packet that has the same; a Reader gives them to every packet of
	// the interface whose comment names none. Empty and 0: none.
	Device string
	Netns  uint32
}

// PacketFlag marks which optional fields of a Packet are set.
type PacketFlag uint16

// Packet flags.
const (
	HasPacketID PacketFlag = 1 << iota
	HasQueue
	HasDropCount
	HasPID
	HasNetns
	HasMark
)

// Packet is one captured packet and its metadata. Data is not retained by
// the writer after WritePacket returns.
type Packet struct {
	// Interface is the index of the packet's interface: in a Writer, the
	// value AddInterface returned; from a bpfcap.Source, the index into its
	// Interfaces().
	Interface int
	// Timestamp is the wall-clock capture time (nanosecond resolution).
	Timestamp time.Time
	// Data holds the captured bytes (at most the interface's snap length).
	Data []byte
	// WireLen is the packet's original length (>= len(Data)).
	WireLen int
	// Flags says which of the optional fields below are set.
	Flags PacketFlag
	// PacketID identifies the packet across hooks (epb_packetid), e.g. the
	// sk_buff address.
	PacketID uint64
	// Queue is the receive queue (epb_queue).
	Queue uint32
	// Direction is written in epb_flags when not unknown.
	Direction Direction
	// VerdictType and Verdict form epb_verdict; VerdictNone for none.
	VerdictType VerdictType
	Verdict     int64
	// DropCount is the number of packets lost before this one (epb_dropcount).
	DropCount uint64
	// The rest is written, readably, in the opt_comment:
	// Hook names the capture point. The interface's name (if_name) is
	// the hook, so a Writer writes Hook only when it names another; a
	// Reader, like bpfcap's sources, sets it to the interface's name.
	Hook string
	// DropReason is the kernel's drop reason name, e.g. "NETFILTER_DROP".
	DropReason string
	// Device is the device name (or "ifindex N").
	Device string
	// PID and Comm identify the current task (HasPID).
	PID  uint32
	Comm string
	// Netns is the network namespace inode (HasNetns).
	Netns uint32
	// Mark is skb->mark (HasMark).
	Mark uint32
	// Comment is appended to the generated comment as is.
	Comment string
}

// InterfaceStats are one interface's counters, written as an Interface
// Statistics Block at the end of a capture.
type InterfaceStats struct {
	// Seen: packets that reached the hook (isb_ifrecv), when SeenCounted.
	Seen uint64
	// SeenCounted says the hook counts every packet it sees. Hooks that
	// keep map updates off their non-matching path do not: then Seen is
	// meaningless, isb_ifrecv is left out and no "seen" figure is shown.
	SeenCounted bool
	// Matched: packets the filter accepted (isb_filteraccept).
	Matched uint64
	// Captured: packets delivered to the output (isb_usrdeliv).
	Captured uint64
	// Lost: matched packets the ring had no room for (isb_ifdrop).
	Lost uint64
	// Skipped: packets the hook could not capture, e.g. without the
	// requested header (isb_osdrop).
	Skipped uint64
	// NoHeader is the part of Skipped that lacked the header the capture
	// starts at (e.g. no MAC header on a locally generated packet).
	NoHeader uint64
	// Shed: matched packets the hook did not capture on purpose, to keep
	// within a rate bound (--max-rate). Not losses: written in
	// isb_osdrop (with Skipped) and named in the ISB comment.
	Shed uint64
	// UserFiltered: packets the kernel captured unfiltered that the
	// userspace filter rejected (fallback filtering; in the ISB comment).
	UserFiltered uint64
}

// RawPacketWriter is the bulk path a PacketWriter may offer to sources
// that already hold encoded blocks (DPDK's pdump): b holds n complete
// little-endian Enhanced Packet Blocks back to back, whose interface IDs
// index the writer's interfaces. The writer may rewrite the IDs in b. It
// returns how many of the n blocks it wrote: fewer than n only with an
// error. A writer that cannot take blocks returns 0 and an error wrapping
// errors.ErrUnsupported; the source then writes packet by packet.
type RawPacketWriter interface {
	WriteRawPackets(b []byte, n int) (int, error)
}

// PacketWriter is where captured packets go: a pcapng file, a pipe, or a
// summary printer. Sources call Flush after each batch so that live
// readers see packets promptly.
type PacketWriter interface {
	WritePacket(p *Packet) error
	Flush() error
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
