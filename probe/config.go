package probe

// probeConfig mirrors struct probe_config in bpf/probe.c: where the loaded
// program finds the sk_buff and the drop reason, which header a record
// starts at and how it maps paged data. It is written into the program's
// .rodata before load.
type probeConfig struct {
	SkbArg    uint32 // 0-based argument, or a classic tracepoint's record offset
	ReasonArg uint32 // the same for the drop reason
	HasReason uint32 // 1 when ReasonArg is valid
	Header    uint32 // a header* value
	// Frags, PageOffset and Vmemmap say how paged data is found (pageMap).
	Frags      uint32 // a frags* value
	_          uint32 // C's padding before the 64-bit fields
	PageOffset uint64
	Vmemmap    uint64
}

// Values of probe_config.header (enum probe_header in bpf/probe.c).
const (
	headerAuto      = 0
	headerEth       = 1
	headerIP        = 2
	headerIP4       = 3
	headerIP6       = 4
	headerIEEE80211 = 5
)
