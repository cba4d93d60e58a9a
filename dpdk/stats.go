//go:build dpdk

package dpdk

// #include "dpdkcap.h"
import "C"

import (
	"fmt"

	"github.com/bpfcap/bpfcap/pcapng"
)

// PortStats are pdump's counters for one port during this capture.
type PortStats struct {
	// Port is the port's name.
	Port string
	// Accepted: packets the filter accepted and the primary copied
	// (including those then lost to a full ring).
	Accepted uint64
	// Filtered: packets the filter rejected.
	Filtered uint64
	// NoMbuf: packets the primary could not copy (our mempool was empty
	// or unusable).
	NoMbuf uint64
	// RingFull: copies lost because the ring to us was full.
	RingFull uint64
	// Captured: packets handed to the output.
	Captured uint64
	// UserFiltered: packets rejected by the userspace filter (only when
	// DPDK could not take the filter).
	UserFiltered uint64
}

// PortStats returns pdump's counters for each port since Open.
func (cp *Capture) PortStats() []PortStats {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.final != nil {
		return append([]PortStats(nil), cp.final...)
	}
	return cp.portStatsLocked()
}

func (cp *Capture) portStatsLocked() []PortStats {
	out := make([]PortStats, len(cp.ports))
	for i, port := range cp.ports {
		var st C.struct_rte_pdump_stats
		out[i].Port = port.Name
		out[i].Captured = cp.captured[i].Load()
		out[i].UserFiltered = cp.userFiltered[i].Load()
		if C.bc_stats(C.uint16_t(port.ID), C.uint32_t(cp.opts.Direction), &st) < 0 {
			continue
		}
		b := cp.base[i]
		out[i].Accepted = since(st.accepted, b.accepted)
		out[i].Filtered = since(st.filtered, b.filtered)
		out[i].NoMbuf = since(st.nombuf, b.nombuf)
		out[i].RingFull = since(st.ringfull, b.ringfull)
	}
	return out
}

// since is now-base, or now when the counter was reset in between.
func since(now, base C.uint64_t) uint64 {
	if now < base {
		return uint64(now)
	}
	return uint64(now - base)
}

// Stats maps PortStats onto the pcapng counters: seen = accepted +
// filtered + nombuf, matched = accepted + nombuf, lost = ringfull,
// skipped = nombuf.
func (cp *Capture) Stats() []pcapng.InterfaceStats {
	ps := cp.PortStats()
	out := make([]pcapng.InterfaceStats, len(ps))
	for i, s := range ps {
		out[i] = pcapng.InterfaceStats{
			Seen:         s.Accepted + s.Filtered + s.NoMbuf,
			SeenCounted:  true, // pdump counts every packet its filter sees
			Matched:      s.Accepted + s.NoMbuf,
			Captured:     s.Captured,
			Lost:         s.RingFull,
			Skipped:      s.NoMbuf,
			UserFiltered: s.UserFiltered,
		}
	}
	return out
}

// checkAllDropped detects the primary failing every copy (trap 1).
func (cp *Capture) checkAllDropped() error {
	var acc, nombuf uint64
	for _, s := range cp.PortStats() {
		acc += s.Accepted
		nombuf += s.NoMbuf
	}
	if acc > 0 || nombuf < 64 {
		return nil
	}
	r := cp.p.opsReport
	why := "bpfcap did not align its mempool ops with the primary's"
	if r.Ops != "" {
		why = fmt.Sprintf("mempool ops %q is at index %d in bpfcap and %d in the primary's packet pools (swapped: %v)", r.Ops, r.OurIndex, r.PrimaryIndex, r.Swapped)
	}
	return fmt.Errorf("%w: %d packets, 0 copied: the primary cannot allocate from bpfcap's mempool; "+
		"its mempool ops table is ordered differently (DPDK bug 1073: drivers loaded in another order); %s: "+
		"start the primary with the same mempool drivers (e.g. -d librte_mempool_ring.so) or report this with `bpfcap dpdk -v`",
		ErrAllDropped, nombuf, why)
}
