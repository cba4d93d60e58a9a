package hook

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/pcapng"
)

// Backend says how the spliced filter reads the packet.
type Backend int

const (
	// Direct: the program calls bpfcap_filter_direct(data, data_end,
	// wire_len) with packet pointers (XDP, tc).
	Direct Backend = iota
	// Scratch: the program copies the packet into its scratch record and
	// calls bpfcap_filter_scratch(buf, cap_len, wire_len) (tracing hooks).
	Scratch
)

// String returns "direct" or "scratch".
func (b Backend) String() string {
	if b == Scratch {
		return "scratch"
	}
	return "direct"
}

// Options describe one program to load for one hook.
type Options struct {
	// Program is the name of the program in the CollectionSpec to load;
	// the spec's other programs are not loaded. Set its AttachTo,
	// AttachType etc. in the spec before calling Load.
	Program string
	// Hook is the hook's index in the session, 0..Ring.MaxHooks()-1: it
	// tags every record and selects the hook's statistics.
	Hook int
	// Filter is the tcpdump filter expression ("" captures everything).
	Filter string
	// Netmask is the IPv4 netmask `ip broadcast` uses, host byte order
	// (filter.CompileNetmask; a live tcpdump takes the device's,
	// filter.DeviceNetmask). 0 compiles as tcpdump -r does.
	Netmask uint32
	// LinkType is what the captured bytes start with (eth, raw IP, ...).
	LinkType pcapng.LinkType
	// Backend is the filter stub the program calls.
	Backend Backend
	// Snaplen is the number of bytes to capture per packet (0: 65536;
	// perf rings are limited to 65000).
	Snaplen int
	// Ifindex and Netns restrict the capture to one device (0: any).
	Ifindex, Netns uint32
	// CountSeen counts every packet that reaches the program (StatSeen),
	// a map update per packet, in programs that count it only when asked
	// (bpfcap_count_seen in capture.h).
	CountSeen bool
	// Task says the hook runs in process context: a packet whose socket
	// has no known owner is attributed to the current task (tracing
	// programs only: XDP and tc programs cannot call the task helpers).
	// Packets of sockets with a known owner (Ring.LearnOwners) are
	// attributed to it on every hook.
	Task bool
	// Want restricts the capture by packet metadata, in the kernel,
	// before the packet is copied.
	Want MetaFilter
	// Unfiltered loads the program without the kernel filter and filters
	// in userspace (what Load falls back to by itself when the kernel
	// refuses the filter).
	Unfiltered bool
	// MaxRate bounds the packets the hook captures, per CPU and second
	// (0: unbounded); the kernel sheds the rest and counts them apart
	// from losses (pcapng.InterfaceStats.Shed). See rateBound.
	MaxRate int
	// InlineFilter puts the filter at the call sites of the backend's stub
	// instead of into the stub's body (filter.SpliceInline), which saves a
	// bpf-to-bpf call and return per packet. When the filter cannot be
	// inlined or the verifier refuses the inlined program, Load splices it
	// into the stub as without InlineFilter (Program.InlineErr says why),
	// and falls back to filtering in userspace as usual from there.
	InlineFilter bool
	// Maps are maps of the object, by name, that the session's programs
	// share besides the ring's (e.g. the probe's packet tracking): the
	// program uses them instead of creating its own. The caller owns them.
	Maps map[string]*ebpf.Map
}

// Program is one loaded capture program, ready to attach.
type Program struct {
	// Program is the loaded program; Close closes it. The object's own
	// maps live as long as the program: Load keeps no descriptor of them,
	// so a hook costs one file descriptor (and one for its link), which
	// lets a capture attach to thousands of functions.
	Program *ebpf.Program
	// Options are the options it was loaded with (Snaplen filled in).
	Options Options
	// KernelFilter is true when the filter runs in the kernel. With a
	// filter and KernelFilter false, the program captures everything and
	// the Source filters in userspace.
	KernelFilter bool
	// Fallback says why the filter runs in userspace ("" when it does not),
	// and FallbackErr is the translator's or verifier's error behind it.
	Fallback    string
	FallbackErr error
	// Inlined is true when the kernel filter runs inlined at its call
	// sites (Options.InlineFilter). InlineErr is why a filter asked to be
	// inlined was spliced into its stub instead (nil otherwise).
	Inlined   bool
	InlineErr error

	matcher *userFilter
	// undecided filters the packets the kernel filter flags as undecided
	// (filter.Undecided: a protochain loop longer than it unrolls).
	undecided *userFilter
}

// Close frees the program (detach its links first).
func (p *Program) Close() error {
	if p == nil || p.Program == nil {
		return nil
	}
	err := p.Program.Close()
	p.Program = nil
	return err
}

// Load loads program opts.Program of spec for one hook of ring's session:
// it writes bpfcap_cfg, compiles the filter with libpcap, splices its eBPF
// translation into the filter stub of opts.Backend and loads the program
// with ring's maps. spec is not modified. With opts.InlineFilter the
// filter is first tried inlined at the stub's call sites, then in the stub.
//
// When the translator cannot express the filter or the verifier refuses
// the filtered program, Load loads the program unfiltered instead, prints
// a notice once (RingOptions.Notices) and the Source filters in userspace.
// A filter libpcap rejects is an error with libpcap's message. Errors for
// missing privilege wrap ErrPermission.
func Load(spec *ebpf.CollectionSpec, ring *Ring, opts Options) (*Program, error) {
	if spec.Programs[opts.Program] == nil {
		names := make([]string, 0, len(spec.Programs))
		for n := range spec.Programs {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("load capture program: object has no program %q (has %v)", opts.Program, names)
	}
	if err := checkCaptureABI(spec); err != nil {
		return nil, fmt.Errorf("load capture program %s: %w", opts.Program, err)
	}
	if opts.Hook < 0 || opts.Hook >= ring.MaxHooks() {
		return nil, fmt.Errorf("load capture program %s: hook index %d out of range 0..%d (raise RingOptions.MaxHooks)", opts.Program, opts.Hook, ring.MaxHooks()-1)
	}
	if opts.LinkType == 0 {
		opts.LinkType = pcapng.LinkTypeEthernet
	}
	limit := MaxData
	if ring.Perf() {
		limit = perfMaxData
	}
	if opts.Snaplen <= 0 || opts.Snaplen > limit {
		opts.Snaplen = limit
	}

	var cbpf []bpf.Instruction
	if opts.Filter != "" {
		var err error
		if cbpf, err = compileFilter(ring.opts.Compile, opts.Filter, opts.LinkType, opts.Snaplen, opts.Netmask); err != nil {
			return nil, err
		}
	}

	p := &Program{Options: opts}
	var coll *ebpf.Collection
	if cbpf != nil && !opts.Unfiltered && opts.InlineFilter {
		c, err := loadOne(spec, ring, opts, cbpf, true)
		if err == nil {
			coll, p.KernelFilter, p.Inlined = c, true, true
		} else if _, ok := fallbackReason(err); ok {
			p.InlineErr = err // retried below with the filter in its stub
		} else {
			return nil, err
		}
	}
	if cbpf != nil && !opts.Unfiltered && coll == nil {
		c, err := loadOne(spec, ring, opts, cbpf, false)
		if err == nil {
			coll, p.KernelFilter = c, true
		} else if reason, ok := fallbackReason(err); ok {
			p.Fallback, p.FallbackErr = reason, err
		} else {
			return nil, err
		}
	}
	if coll == nil {
		c, err := loadOne(spec, ring, opts, nil, false)
		if err != nil {
			return nil, err
		}
		coll = c
		if cbpf != nil {
			if p.Fallback == "" {
				p.Fallback = "unfiltered load requested"
			}
			if p.matcher, err = newUserFilter(cbpf); err != nil {
				coll.Close()
				return nil, fmt.Errorf("load capture program %s: userspace filter: %w", opts.Program, err)
			}
			ring.notice(fmt.Sprintf("the kernel did not take the filter (%s); capturing unfiltered and filtering in userspace", p.Fallback))
		}
	}
	if p.KernelFilter {
		var err error
		if p.undecided, err = newUserFilter(cbpf); err != nil {
			coll.Close()
			return nil, fmt.Errorf("load capture program %s: userspace filter: %w", opts.Program, err)
		}
	}
	// The program keeps its maps; the collection's handles of them are
	// not needed any more.
	p.Program = coll.DetachProgram(opts.Program)
	coll.Close()
	return p, nil
}

// errKernelFilter marks errors after which Load retries without the
// kernel filter.
type errKernelFilter struct {
	reason string
	err    error
}

func (e *errKernelFilter) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errKernelFilter) Unwrap() error { return e.err }

func fallbackReason(err error) (string, bool) {
	var ek *errKernelFilter
	if errors.As(err, &ek) {
		return ek.reason, true
	}
	return "", false
}

// loadOne loads a copy of spec with only opts.Program, configured, and the
// filter spliced in when cbpf is not nil: inlined at the stub's call sites
// when inline is true, into the stub otherwise.
func loadOne(spec *ebpf.CollectionSpec, ring *Ring, opts Options, cbpf []bpf.Instruction, inline bool) (*ebpf.Collection, error) {
	spec = spec.Copy()
	for name := range spec.Programs {
		if name != opts.Program {
			delete(spec.Programs, name)
		}
	}
	cfg := config{
		Hook:        uint32(opts.Hook),
		Snaplen:     uint32(opts.Snaplen),
		Ifindex:     opts.Ifindex,
		Netns:       opts.Netns,
		WakeupBytes: ring.wakeupBytes(),
		Linktype:    uint32(opts.LinkType),
		MaxHooks:    uint32(ring.MaxHooks()),
	}
	opts.Want.setConfig(&cfg)
	cfg.FilterReads = filterReads(cbpf, opts.Snaplen)
	cfg.RateInterval, cfg.RateBurst = rateBound(opts.MaxRate)
	if ring.Perf() {
		cfg.Flags |= cfgPerf
	}
	if opts.Task {
		cfg.Flags |= cfgTask
	}
	if opts.CountSeen {
		cfg.Flags |= cfgCountSeen
	}
	if cbpf == nil {
		cfg.Flags |= cfgUnfiltered
	}
	v := spec.Variables[ConfigVar]
	if v == nil {
		return nil, fmt.Errorf("load capture program %s: object has no %s: does it include capture.h?", opts.Program, ConfigVar)
	}
	if err := v.Set(cfg); err != nil {
		return nil, fmt.Errorf("load capture program %s: set %s: %w", opts.Program, ConfigVar, err)
	}
	if cbpf != nil {
		if err := spliceFilter(spec.Programs[opts.Program], opts, cbpf, inline); err != nil {
			return nil, err
		}
	}
	repl := ring.replacements()
	for name, m := range opts.Maps {
		repl[name] = m
	}
	if ring.Perf() {
		spec.Maps[RingMap] = ringPlaceholder()
	}
	for name, m := range repl {
		ms := spec.Maps[name]
		if ms == nil {
			return nil, fmt.Errorf("load capture program %s: object has no map %s: does it include capture.h?", opts.Program, name)
		}
		ms.MaxEntries = m.MaxEntries() // sized by NewRing
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl, Cache: ring.btfCache})
	if err != nil {
		what := fmt.Sprintf("load capture program %s", opts.Program)
		if cbpf != nil && refusedFilter(err) {
			reason := "the verifier refused the filtered program"
			if inline {
				reason = "the verifier refused the program with the filter inlined"
			}
			return nil, &errKernelFilter{reason: reason, err: fmt.Errorf("%s: %w", what, err)}
		}
		return nil, wrapPerm(what, err)
	}
	return coll, nil
}

// refusedFilter reports whether a load error looks like the verifier (or
// a size limit) refusing the program, rather than missing privilege.
func refusedFilter(err error) bool {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return !errors.Is(err, unix.EPERM)
	}
	return errors.Is(err, unix.E2BIG) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSPC)
}
