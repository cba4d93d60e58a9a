package hook

import (
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
)

// filterReads is bpfcap_config.filter_reads for a program filtering with
// cbpf: the bytes it copies before running the filter, the rest being
// copied only for packets that match. 0 without a kernel filter; the snap
// length (MaxData when snaplen is 0 or above it) when the filter's reads
// have no bound (filter.ReadExtent), which copies everything first, or
// reach past it: the filter never reads more than a record holds.
func filterReads(cbpf []bpf.Instruction, snaplen int) uint32 {
	if cbpf == nil {
		return 0
	}
	if snaplen <= 0 || snaplen > MaxData {
		snaplen = MaxData
	}
	n, ok := filter.ReadExtent(cbpf)
	if !ok || n > uint32(snaplen) {
		return uint32(snaplen)
	}
	return n
}

// rateBound turns a bound of pps packets per second and CPU into
// bpfcap_config's rate_interval (ns per packet) and rate_burst (packets
// let through back to back: a tenth of a second's worth, at least one).
// pps <= 0 is no bound.
func rateBound(pps int) (interval, burst uint32) {
	if pps <= 0 {
		return 0, 0
	}
	pps = min(pps, 1_000_000_000)
	return uint32(1_000_000_000 / pps), uint32(max(1, pps/10))
}
