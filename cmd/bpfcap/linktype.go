package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/bpfcap/bpfcap/linktype"
	"github.com/bpfcap/bpfcap/pcapng"
)

// linkTypeText names a link type as tcpdump's "link-type" does
// ("EN10MB (Ethernet)").
func linkTypeText(lt pcapng.LinkType) string {
	if e, ok := linktype.ByLinkType(uint16(lt)); ok {
		return e.Name + " (" + e.Description + ")"
	}
	return fmt.Sprintf("%d", uint16(lt))
}

// linkTypesText lists the link types of ifaces, in order of appearance:
// "link-type EN10MB (Ethernet)", or "link-types ... and ..." when the user
// asked for several (tcpdump then cannot read the file).
func linkTypesText(ifaces []pcapng.Interface) string {
	var names []string
	seen := map[pcapng.LinkType]bool{}
	for _, ifc := range ifaces {
		if ifc.LinkType != 0 && !seen[ifc.LinkType] {
			seen[ifc.LinkType] = true
			names = append(names, linkTypeText(ifc.LinkType))
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return "link-type " + names[0]
	}
	return "link-types " + strings.Join(names, " and ") + " (Wireshark reads this; tcpdump reads one link type per file)"
}

// headerName is what a packet lacked when it had none of the header its
// capture starts at, and otherProto the proto that shows such packets.
func headerName(lt pcapng.LinkType) (header, otherProto string) {
	switch lt {
	case pcapng.LinkTypeEthernet, pcapng.LinkTypeIEEE80211:
		return "MAC header", "proto ip"
	case pcapng.LinkTypeIPv4:
		return "IPv4 header", "proto ip or proto eth"
	case pcapng.LinkTypeIPv6:
		return "IPv6 header", "proto ip or proto eth"
	}
	return "IP header", "proto eth"
}

// printHeaderMisses says, once per capture point, how many packets lacked
// the header the capture starts at and which proto shows them: without
// it, forgetting `proto ip` silently hides the packets a host sends
// before they have a MAC header.
func printHeaderMisses(w io.Writer, ifaces []pcapng.Interface, stats []pcapng.InterfaceStats) {
	for i, ifc := range ifaces {
		if i >= len(stats) || stats[i].NoHeader == 0 {
			continue
		}
		hdr, other := headerName(ifc.LinkType)
		fmt.Fprintf(w, "bpfcap: %s: %d packets had no %s and were not captured: %s shows them\n", ifc.Name, stats[i].NoHeader, hdr, other)
	}
}
