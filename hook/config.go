package hook

// Names of the objects capture.h defines, shared by every capture object.
const (
	ConfigVar      = "bpfcap_cfg"
	RingMap        = "bpfcap_ring"
	PerfMap        = "bpfcap_perf"
	StatsMap       = "bpfcap_stats"
	ScratchMap     = "bpfcap_scratch"
	NestMap        = "bpfcap_nest"
	OwnersMap      = "bpfcap_owners"
	FilterDirect   = "bpfcap_filter_direct"
	FilterScratch  = "bpfcap_filter_scratch"
	MaxData        = 65536 // BPFCAP_MAX_DATA
	nestLevels     = 4     // BPFCAP_NEST_LEVELS
	perfMaxData    = 65000 // perf samples must stay below 64 KiB in all
	defaultMaxHook = 64
)

// The configuration and the statistics come from the declarations bpf2go
// generates from capture.h (abi_*_bpfel.go): their values and layout are
// not written by hand.

// Stat indexes a per-hook counter in the statistics map (enum bpfcap_stat).
type Stat int

// Counters capture.h keeps per hook.
const (
	StatSeen     = Stat(abiBpfcapStatBPFCAP_STAT_SEEN)
	StatMatched  = Stat(abiBpfcapStatBPFCAP_STAT_MATCHED)
	StatCaptured = Stat(abiBpfcapStatBPFCAP_STAT_CAPTURED)
	StatLost     = Stat(abiBpfcapStatBPFCAP_STAT_LOST)
	StatNoHeader = Stat(abiBpfcapStatBPFCAP_STAT_NOHDR)
	StatNested   = Stat(abiBpfcapStatBPFCAP_STAT_NESTED)
	StatError    = Stat(abiBpfcapStatBPFCAP_STAT_ERROR)
	// StatShed counts matched packets the rate bound (CaptureOptions.MaxRate)
	// did not capture, on purpose: apart from StatLost, the ring's losses.
	StatShed = Stat(abiBpfcapStatBPFCAP_STAT_SHED)
	NumStats = Stat(abiBpfcapStatBPFCAP_NSTATS)
)

// config is struct bpfcap_config in capture.h, the program's .rodata
// configuration.
type config = abiBpfcapConfig

// Configuration flags (enum bpfcap_cfg_flag).
const (
	cfgPerf       = uint32(abiBpfcapCfgFlagBPFCAP_CFG_PERF)
	cfgUnfiltered = uint32(abiBpfcapCfgFlagBPFCAP_CFG_UNFILTERED)
	cfgTask       = uint32(abiBpfcapCfgFlagBPFCAP_CFG_TASK)
	cfgCountSeen  = uint32(abiBpfcapCfgFlagBPFCAP_CFG_COUNT_SEEN)
	cfgMeta       = uint32(abiBpfcapCfgFlagBPFCAP_CFG_META)
)
