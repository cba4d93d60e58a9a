package hook

// Names of the objects capture.h defines, shared by every capture object.
const (
	ConfigVar      = "bpfcap_cfg"
	RingMap        = "bpfcap_ring"
	PerfMap        = "bpfcap_perf"
	StatsMap       = "bpfcap_stats"
	ScratchMap     = "bpfcap_scratch"
	NestMap        = "bpfcap_nest"
	FilterDirect   = "bpfcap_filter_direct"
	FilterScratch  = "bpfcap_filter_scratch"
	MaxData        = 65536 // BPFCAP_MAX_DATA
	nestLevels     = 4     // BPFCAP_NEST_LEVELS
	eventSize      = 80    // sizeof(struct bpfcap_event)
	perfMaxData    = 65000 // perf samples must stay below 64 KiB in all
	defaultMaxHook = 64
)

// Stat indexes a per-hook counter in the statistics map (enum bpfcap_stat).
type Stat int

// Counters capture.h keeps per hook.
const (
	StatSeen Stat = iota
	StatMatched
	StatCaptured
	StatLost
	StatNoHeader
	StatNested
	StatError
	// StatShed counts matched packets the rate bound (Options.MaxRate)
	// did not capture, on purpose: apart from StatLost, the ring's losses.
	StatShed
	NumStats
)

// config mirrors struct bpfcap_config in capture.h.
type config struct {
	Hook        uint32
	Snaplen     uint32
	Ifindex     uint32
	Netns       uint32
	Flags       uint32
	WakeupBytes uint32
	LinkType    uint32
	MaxHooks    uint32
	// Filter before copy and the rate bound (filterReads, rateBound).
	FilterReads  uint32
	RateInterval uint32
	RateBurst    uint32
}

// Configuration flags (enum bpfcap_cfg_flag).
const (
	cfgPerf       = 1 << 0
	cfgUnfiltered = 1 << 1
	cfgTask       = 1 << 2
)
