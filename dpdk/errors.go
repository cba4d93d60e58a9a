package dpdk

import "errors"

// Errors callers can test for with errors.Is.
var (
	// ErrNoPrimary means no DPDK primary process with the given file
	// prefix is running.
	ErrNoPrimary = errors.New("no DPDK primary process running")
	// ErrVersionMismatch means the primary runs a DPDK version other than
	// the one bpfcap was built against (secondaries must match exactly).
	ErrVersionMismatch = errors.New("DPDK version mismatch")
	// ErrNoPort means a port name or id names no port of the primary.
	ErrNoPort = errors.New("no such DPDK port")
	// ErrAllDropped means the primary dropped every packet it tried to
	// copy for us (it could not allocate from our mempool).
	ErrAllDropped = errors.New("every captured packet was dropped in the primary")
	// ErrAttached means the process already attached to a primary: DPDK
	// allows one EAL per process.
	ErrAttached = errors.New("DPDK EAL already initialised in this process")
	// ErrNoHugepages means the primary's hugepages have no room for the
	// capture ring and its mempool (CaptureOptions.RingSize packets).
	ErrNoHugepages = errors.New("no room in the primary's hugepages")
	// ErrPortCaptured means the port already has a capture enabled (by
	// dpdk-dumpcap, another bpfcap, or one that was killed and left it
	// enabled); CaptureOptions.Takeover replaces it.
	ErrPortCaptured = errors.New("the port already has a capture")
)
