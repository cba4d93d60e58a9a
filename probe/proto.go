package probe

import (
	"fmt"
	"strings"

	"github.com/bpfcap/bpfcap/linktype"
	"github.com/bpfcap/bpfcap/pcapng"
)

// ProtoAuto is the `proto` keyword that asks for two link types in one
// file: Ethernet where the skb has a MAC header, raw IP elsewhere.
// Wireshark reads such a file; tcpdump and libpcap 1.10 do not.
const ProtoAuto = "auto"

// protoHeader returns the header (a header* value) a record starts at for
// a `proto` keyword a tracing hook supports; the link type is the one the
// link-type table gives the keyword.
func protoHeader(proto string) (uint32, bool) {
	switch proto {
	case "eth":
		return headerEth, true
	case "ip":
		return headerIP, true
	case "ip4":
		return headerIP4, true
	case "ip6":
		return headerIP6, true
	case "ieee802_11":
		return headerIEEE80211, true
	}
	return 0, false
}

// ProtoNames lists the `proto` keywords tracing hooks accept, sorted.
func ProtoNames() []string {
	var names []string
	for _, p := range linktype.Protos() {
		if _, ok := protoHeader(p); ok {
			names = append(names, p)
		}
	}
	return names
}

// chooseHeader maps the proto keyword to the probe's header setting, the
// hook's link type and the extra link types it may emit. Without proto,
// records start at the MAC header, so that a file holds one link type
// (tcpdump and libpcap 1.10 read no other); "auto" asks for several: the
// MAC header where the skb has one, else the network header as raw IP.
func chooseHeader(proto, filter string) (uint32, pcapng.LinkType, []pcapng.LinkType, error) {
	switch proto {
	case "":
		return headerEth, pcapng.LinkTypeEthernet, nil, nil
	case ProtoAuto:
		if filter != "" {
			return 0, 0, nil, fmt.Errorf("proto auto writes Ethernet and raw IP packets, and a filter is compiled for one of them: use proto eth or proto ip with a filter")
		}
		return headerAuto, pcapng.LinkTypeEthernet, []pcapng.LinkType{pcapng.LinkTypeRaw}, nil
	}
	h, ok := protoHeader(proto)
	e, inTable := linktype.ByProto(proto)
	if !ok || !inTable {
		return 0, 0, nil, fmt.Errorf("proto %q: tracing hooks capture from the skb's headers; use one of %s, or auto for several link types", proto, strings.Join(ProtoNames(), ", "))
	}
	return h, pcapng.LinkType(e.LinkType), nil, nil
}
