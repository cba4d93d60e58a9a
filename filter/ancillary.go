package filter

import "fmt"

// AncillaryError is returned, wrapping ErrUnsupported, for a program that
// loads Linux socket-filter ancillary data (SKF_AD_*, or the SKF_NET_OFF
// and SKF_LL_OFF offsets): fields a packet only has where it meets a
// socket. libpcap emits such loads on Linux for `inbound`, `outbound`,
// `ifindex` and VLAN offload tests. Neither the translator nor Matcher
// can run them: no hook and no file has the data.
type AncillaryError struct {
	// PC is the index of the loading instruction.
	PC int
	// Offset is the load's absolute offset (0xfffff004 for the packet
	// type).
	Offset uint32
}

// Error says which instruction loads what.
func (e *AncillaryError) Error() string {
	what := fmt.Sprintf("Linux ancillary data at %#x", e.Offset)
	if f := e.Field(); f != "" {
		what = fmt.Sprintf("the socket's %s (Linux ancillary data at %#x)", f, e.Offset)
	}
	return fmt.Sprintf("cBPF instruction %d loads %s: %v", e.PC, what, ErrUnsupported)
}

// Unwrap returns ErrUnsupported.
func (e *AncillaryError) Unwrap() error { return ErrUnsupported }

// ancillaryFields names the SKF_AD_* offsets (linux/filter.h) by their
// distance from SKF_AD_OFF.
var ancillaryFields = map[uint32]string{
	0: "protocol", 4: "pkttype", 8: "ifindex", 12: "nlattr", 16: "nlattr_nest",
	20: "mark", 24: "queue", 28: "hatype", 32: "rxhash", 36: "cpu",
	44: "vlan_tci", 48: "vlan_present", 52: "pay_offset", 56: "random", 60: "vlan_tpid",
}

// Field returns the ancillary field the load reads ("pkttype" for
// `inbound` and `outbound`, "ifindex", "vlan_tci", ...), or "" for the
// SKF_NET_OFF and SKF_LL_OFF ranges and unknown offsets.
func (e *AncillaryError) Field() string {
	if e.Offset < ancillaryBase {
		return ""
	}
	return ancillaryFields[e.Offset-ancillaryBase]
}
