// Package linktype is bpfcap's one table of the link-layer header types
// it captures and names. For each it holds the `proto` keyword, the
// LINKTYPE_ value pcap and pcapng files store, the DLT_ value libpcap uses
// in memory (pcap_open_dead), tcpdump's name and description, and the C
// constant BPF programs use: bpf/linktype.h is generated from this table
// (make generate). Link types outside the table are libpcap's to name
// (see filter.ParseProto).
package linktype

import (
	"sort"
	"strings"
)

// LINKTYPE_ values of the link types in the table.
const (
	Ethernet  = 1   // LINKTYPE_ETHERNET
	Raw       = 101 // LINKTYPE_RAW: IPv4 or IPv6, no link header
	IEEE80211 = 105 // LINKTYPE_IEEE802_11
	LinuxSLL  = 113 // LINKTYPE_LINUX_SLL: 16-byte Linux cooked header
	IPv4      = 228 // LINKTYPE_IPV4
	IPv6      = 229 // LINKTYPE_IPV6
	LinuxSLL2 = 276 // LINKTYPE_LINUX_SLL2
)

// DLTRaw is Linux's DLT_RAW (12), libpcap's in-memory value for
// LINKTYPE_RAW. Every other link type of the table has the same DLT_ and
// LINKTYPE_ value.
const DLTRaw = 12

// Entry is one link type of the table.
type Entry struct {
	// Proto is bpfcap's `proto` keyword for it ("eth").
	Proto string
	// LinkType is the LINKTYPE_ value files store.
	LinkType uint16
	// DLT is libpcap's DLT_ value for it.
	DLT uint32
	// Name is libpcap's and tcpdump's name of the DLT ("EN10MB").
	Name string
	// Description is libpcap's description of the DLT ("Ethernet").
	Description string
	// CName is the constant bpf/linktype.h defines to LinkType.
	CName string
}

// Table returns the link types bpfcap has `proto` keywords for, in
// LINKTYPE_ order.
func Table() []Entry {
	return []Entry{
		{Proto: "eth", LinkType: Ethernet, DLT: Ethernet, Name: "EN10MB", Description: "Ethernet", CName: "BPFCAP_LINKTYPE_ETHERNET"},
		{Proto: "ip", LinkType: Raw, DLT: DLTRaw, Name: "RAW", Description: "Raw IP", CName: "BPFCAP_LINKTYPE_RAW"},
		{Proto: "ieee802_11", LinkType: IEEE80211, DLT: IEEE80211, Name: "IEEE802_11", Description: "802.11", CName: "BPFCAP_LINKTYPE_IEEE802_11"},
		{Proto: "sll", LinkType: LinuxSLL, DLT: LinuxSLL, Name: "LINUX_SLL", Description: "Linux cooked v1", CName: "BPFCAP_LINKTYPE_LINUX_SLL"},
		{Proto: "ip4", LinkType: IPv4, DLT: IPv4, Name: "IPV4", Description: "Raw IPv4", CName: "BPFCAP_LINKTYPE_IPV4"},
		{Proto: "ip6", LinkType: IPv6, DLT: IPv6, Name: "IPV6", Description: "Raw IPv6", CName: "BPFCAP_LINKTYPE_IPV6"},
		{Proto: "sll2", LinkType: LinuxSLL2, DLT: LinuxSLL2, Name: "LINUX_SLL2", Description: "Linux cooked v2", CName: "BPFCAP_LINKTYPE_LINUX_SLL2"},
	}
}

// ByProto returns the entry whose `proto` keyword is proto, in any case.
func ByProto(proto string) (Entry, bool) {
	return find(func(e Entry) bool { return strings.EqualFold(e.Proto, proto) })
}

// ByLinkType returns the entry of a LINKTYPE_ value.
func ByLinkType(lt uint16) (Entry, bool) {
	return find(func(e Entry) bool { return e.LinkType == lt })
}

// ByDLT returns the entry of a DLT_ value.
func ByDLT(dlt uint32) (Entry, bool) {
	return find(func(e Entry) bool { return e.DLT == dlt })
}

// Protos returns the `proto` keywords of the table, sorted.
func Protos() []string {
	t := Table()
	names := make([]string, 0, len(t))
	for _, e := range t {
		names = append(names, e.Proto)
	}
	sort.Strings(names)
	return names
}

func find(match func(Entry) bool) (Entry, bool) {
	for _, e := range Table() {
		if match(e) {
			return e, true
		}
	}
	return Entry{}, false
}
