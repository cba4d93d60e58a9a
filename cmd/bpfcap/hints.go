package main

import (
	"errors"

	"github.com/bpfcap/bpfcap/filter"
)

// errorHint returns the next step for an error a library reported as a
// fact, or "" when the error's own words say enough.
func errorHint(err error) string {
	var ae *filter.AncillaryError
	if errors.As(err, &ae) {
		switch ae.Field() {
		case "pkttype":
			return "`inbound` and `outbound` test the direction a socket saw the packet in, which no bpfcap hook has: pick the direction with the hook instead (bpfcap tc dev IF ingress|egress, or -Q in|out; XDP sees inbound packets only)"
		case "ifindex":
			return "`ifindex` reads the interface a socket saw: use dev IF (-i IF) instead"
		}
		return "the filter reads data only a socket has (Linux ancillary data): leave that test out"
	}
	return ""
}
