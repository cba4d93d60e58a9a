package bpfcap

import (
	"context"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// Source is a packet source a Session drives: kernel hooks (probe/,
// xdpcap/, tccap/, all built on hook.Source) or a userspace dataplane
// (dpdk/). A Source is attached (capturing into its ring) once opened.
type Source interface {
	// Interfaces describes the source's capture points, one per (hook,
	// link type). Packet.Interface values from Run index this slice. The
	// list is fixed once the source is open, except for interfaces the
	// source adds while it runs through InterfaceAdder (appended, in the
	// order of the AddInterface calls).
	Interfaces() []pcapng.Interface
	// Run writes packets to sink until ctx is done or sink fails. It calls
	// sink.Flush after each batch so live readers see packets promptly.
	// When ctx is done it stops the capture (detaches its hooks), drains
	// what is still in flight into sink, and returns nil. An error from
	// sink is returned as is (wrapped with %w).
	Run(ctx context.Context, sink pcapng.PacketWriter) error
	// Stats returns the counters of each interface, by index into
	// Interfaces. Safe to call concurrently with Run and after it.
	Stats() []pcapng.InterfaceStats
	// Close detaches and frees everything the source holds. It is safe to
	// call more than once and after Run returned.
	Close() error
}

// InterfaceAdder is implemented by the PacketWriter that Run passes to
// Source.Run: a source that discovers capture points while it runs adds
// them through it (see pcapng.InterfaceAdder, where it is declared).
type InterfaceAdder = pcapng.InterfaceAdder

// Sink is where a Session writes: a pcapng.Writer, or a printer of
// one-line summaries. Interfaces are added before the first packet;
// statistics are written once at the end.
type Sink interface {
	pcapng.PacketWriter
	// AddInterface announces a capture point and returns the index packets
	// for it carry (pcapng: writes an Interface Description Block).
	AddInterface(ifc pcapng.Interface) (int, error)
	// WriteStats records an interface's counters at the end of the
	// capture (pcapng: an Interface Statistics Block).
	WriteStats(ifIndex int, start, end time.Time, s pcapng.InterfaceStats) error
}
