package filter

import (
	"fmt"
	"strings"

	"github.com/bpfcap/bpfcap/linktype"
)

// LinkType is the link-layer header type of the packets a filter sees,
// named by the bpftool-style `proto` keyword or by libpcap's name. Its value is the libpcap DLT
// that pcap_open_dead expects, which is not always the LINKTYPE_ value that
// pcap files carry (see FileLinkType and LinkTypeFromFile).
type LinkType uint32

// The link types bpfcap has short `proto` names for (the table of
// package linktype, in DLT_ values). Filters compile for every link type
// libpcap knows.
const (
	// LinkEthernet is DLT_EN10MB: Ethernet (`proto eth`).
	LinkEthernet LinkType = linktype.Ethernet
	// LinkRaw is Linux DLT_RAW (12): raw IPv4 or IPv6 (`proto ip`). Pcap
	// files call it LINKTYPE_RAW (101).
	LinkRaw LinkType = linktype.DLTRaw
	// LinkIEEE80211 is DLT_IEEE802_11 (105): 802.11 without radio header
	// (`proto ieee802_11`).
	LinkIEEE80211 LinkType = linktype.IEEE80211
	// LinkSLL is DLT_LINUX_SLL (113): Linux cooked capture v1 (`proto sll`).
	LinkSLL LinkType = linktype.LinuxSLL
	// LinkIPv4 is DLT_IPV4 (228): raw IPv4 only (`proto ip4`).
	LinkIPv4 LinkType = linktype.IPv4
	// LinkIPv6 is DLT_IPV6 (229): raw IPv6 only (`proto ip6`).
	LinkIPv6 LinkType = linktype.IPv6
	// LinkSLL2 is DLT_LINUX_SLL2 (276): Linux cooked capture v2 (`proto sll2`).
	LinkSLL2 LinkType = linktype.LinuxSLL2
)

// ProtoNames returns the `proto` keywords ParseProto accepts, sorted.
func ProtoNames() []string {
	return linktype.Protos()
}

// ParseProto returns the link type named by a `proto` keyword: bpfcap's
// short names (eth, ip, ip4, ip6, ieee802_11, sll, sll2) or any name
// libpcap's pcap_datalink_name_to_val knows (null, ppp,
// ieee802_11_radio, linux_sll, ..., with or without "DLT_"), in any case.
// The error lists bpfcap's names.
func ParseProto(name string) (LinkType, error) {
	if e, ok := linktype.ByProto(name); ok {
		return LinkType(e.DLT), nil
	}
	if dlt, ok := dltByName(name); ok {
		return LinkType(dlt), nil
	}
	return 0, fmt.Errorf("unknown proto %q: valid protos are %s, or a libpcap link-type name (null, ppp, ieee802_11_radio, ...)", name, strings.Join(ProtoNames(), ", "))
}

// String returns the `proto` keyword of lt, else libpcap's lower-case
// name for it, else "linktype(N)".
func (lt LinkType) String() string {
	if e, ok := linktype.ByDLT(uint32(lt)); ok {
		return e.Proto
	}
	if name := dltName(uint32(lt)); name != "" {
		return name
	}
	return fmt.Sprintf("linktype(%d)", uint32(lt))
}

// FileLinkType returns the LINKTYPE_ value that pcap and pcapng files use
// for lt, as libpcap writes it (LINKTYPE_RAW, 101, for DLT_RAW; the same
// number for most link types).
func (lt LinkType) FileLinkType() uint32 {
	if e, ok := linktype.ByDLT(uint32(lt)); ok {
		return uint32(e.LinkType)
	}
	return dltToLinktype(uint32(lt))
}

// LinkTypeFromFile returns the link type (DLT_) of packets in a pcap or
// pcapng file whose header says lt (a LINKTYPE_ value), as libpcap
// reads it: LINKTYPE_RAW (101) and the Linux DLT_RAW value (12) some
// writers store both mean raw IP, and every other value maps as libpcap
// maps it. Every link type is accepted: libpcap compiles filters for all
// of them (pcap_compile refuses only what the expression cannot express
// for the link type) and the translator does not depend on it.
func LinkTypeFromFile(lt uint32) LinkType {
	if lt == uint32(LinkRaw) {
		return LinkRaw
	}
	if e, ok := linktype.ByLinkType(uint16(lt)); ok && uint32(e.LinkType) == lt {
		return LinkType(e.DLT)
	}
	return LinkType(linktypeToDLT(lt))
}
