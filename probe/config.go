package probe

// probeConfig is struct probe_config in bpf/probe.c, as bpf2go generates
// it: where the loaded program finds the sk_buff and the drop reason,
// which header a record starts at and how it maps paged data (pageMap).
// It is written into the program's .rodata before load.
type probeConfig = probeProbeConfig

// Values of probe_config.location_from (enum probe_location in
// bpf/probe.c): where the program finds the location of the code that
// freed the skb.
const (
	locationFromArg    = 1 // an argument or tracepoint record field
	locationFromCaller = 2 // the hooked function's return address
)

// Values of probe_config.header (enum probe_header in bpf/probe.c).
const (
	headerAuto      = 0
	headerEth       = 1
	headerIP        = 2
	headerIP4       = 3
	headerIP6       = 4
	headerIEEE80211 = 5
)
