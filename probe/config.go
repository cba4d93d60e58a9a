package probe

// probeConfig mirrors struct probe_config in bpf/probe.c: where the loaded
// program finds the sk_buff and the drop reason, and which header a record
// starts at. It is written into the program's .rodata before load.
type probeConfig struct {
	SkbArg    uint32 // 0-based argument, or a classic tracepoint's record offset
	ReasonArg uint32 // the same for the drop reason
	HasReason uint32 // 1 when ReasonArg is valid
	Header    uint32 // a header* value
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
