//go:build dpdk

package dpdk

// #include "dpdkcap.h"
import "C"

import "fmt"

// Direction picks which packets of a port are captured.
type Direction uint32

// Directions, as pdump flags.
const (
	RX   Direction = C.RTE_PDUMP_FLAG_RX
	TX   Direction = C.RTE_PDUMP_FLAG_TX
	Both Direction = C.RTE_PDUMP_FLAG_RXTX
)

// ParseDirection reads "rx", "tx" or "both".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "rx":
		return RX, nil
	case "tx":
		return TX, nil
	case "both", "rxtx":
		return Both, nil
	}
	return 0, fmt.Errorf("direction %q: want rx, tx or both", s)
}

// String returns "rx", "tx" or "both".
func (d Direction) String() string {
	switch d {
	case RX:
		return "rx"
	case TX:
		return "tx"
	}
	return "both"
}

// Defaults for CaptureOptions.
const (
	DefaultSnapLen  = 262144
	DefaultRingSize = 16384
)

// CaptureOptions say what to capture.
type CaptureOptions struct {
	// Ports are port names (or ids) of the primary; at least one.
	Ports []string
	// Direction is RX, TX or Both (the default when zero).
	Direction Direction
	// Filter is a tcpdump expression (empty: every packet).
	Filter string
	// SnapLen is the most bytes kept per packet (DefaultSnapLen if 0).
	SnapLen int
	// RingSize is the number of packets the ring between the primary and
	// us holds (a power of two; DefaultRingSize if 0).
	RingSize int
	// Takeover replaces a capture already enabled on a port (one left by
	// a killed bpfcap or dpdk-dumpcap) instead of failing.
	Takeover bool
	// NoAlignOps skips aligning the mempool ops tables (DPDK bug 1073).
	// Only tests set it, to show what happens without.
	NoAlignOps bool
}
