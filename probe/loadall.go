package probe

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
)

// loadedHook is one target's program, loaded and attached, or why not.
// Targets that share a program (by attach cookie) each hold a descriptor
// of it, with their own hook index; each link is held by one of the
// targets it attaches (link nil on the others).
type loadedHook struct {
	target *Target
	prog   *hook.Program
	link   link.Link
	err    error
	// shared says an earlier target holds prog's program too.
	shared bool
}

// close detaches and frees what was loaded.
func (l *loadedHook) close() {
	if l.link != nil {
		l.link.Close()
	}
	l.prog.Close()
}

// loadUnits returns the targets one program serves each, as indexes into
// targets: a target whose hook index is its attach cookie or its
// function's address shares its program with every other whose program is
// configured alike (one kprobe-multi link attaches it to all their
// functions, or one perf kprobe each); any other target has its own.
func loadUnits(targets []*Target) [][]int {
	type sharedKey struct {
		skbArg, reasonArg, locationArg                            int
		hasReason, hasLocation, callerLocation, task, multi, addr bool
	}
	var units [][]int
	group := map[sharedKey]int{}
	for i, t := range targets {
		if !t.shared() {
			units = append(units, []int{i})
			continue
		}
		k := sharedKey{t.SkbArg, t.ReasonArg, t.LocationArg, t.HasReason, t.HasLocation, t.LocationIsCaller, inProcessContext(t), t.Multi, t.AddrHook}
		u, ok := group[k]
		if !ok {
			u = len(units)
			group[k] = u
			units = append(units, nil)
		}
		units[u] = append(units[u], i)
	}
	return units
}

// loadAttachAll loads (with load) and attaches the programs of targets,
// one per load unit (loadUnits), up to one per CPU at a time: the
// verifier's work dominates, and it runs on the loading thread. load is
// given the first target of a unit and its index. The i-th result is
// targets[i]'s.
func loadAttachAll(targets []*Target, load func(i int, t *Target) (*hook.Program, error)) []loadedHook {
	out := make([]loadedHook, len(targets))
	for i, t := range targets {
		out[i].target = t
	}
	units := loadUnits(targets)
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(units)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for unit := range work {
				loadAttachUnit(targets, unit, out, load)
			}
		}()
	}
	for _, u := range units {
		work <- u
	}
	close(work)
	wg.Wait()
	return out
}

// loadAttachUnit loads the program of the targets at unit and attaches it,
// filling their results in out.
func loadAttachUnit(targets []*Target, unit []int, out []loadedHook, load func(i int, t *Target) (*hook.Program, error)) {
	first := unit[0]
	prog, err := load(first, targets[first])
	if err != nil {
		for _, i := range unit {
			out[i].err = err
		}
		return
	}
	if !targets[first].shared() {
		res := &out[first]
		if res.link, res.err = attach(targets[first], prog.Program); res.err != nil {
			prog.Close()
			return
		}
		res.prog = prog
		return
	}
	var links []multiLink
	var refused map[int]error
	if targets[first].Multi {
		links, refused = attachMulti(prog.Program, targets, unit)
	} else {
		links, refused = attachPerFunction(prog.Program, targets, unit, targets[first].Cookie)
	}
	shared := false
	for _, i := range unit {
		if err := refused[i]; err != nil {
			out[i].err = err
			continue
		}
		p := *prog
		p.Options.Hook = i
		if p.Program, err = prog.Program.Clone(); err != nil {
			// Attached all the same: its records go unread.
			out[i].err = fmt.Errorf("trace: %s: hold the program: %w", targets[i], err)
			continue
		}
		out[i].prog, out[i].shared, shared = &p, shared, true
	}
	prog.Close()
	for _, ml := range links {
		holder := slices.IndexFunc(ml.idxs, func(i int) bool { return out[i].err == nil })
		if holder < 0 {
			ml.link.Close()
			continue
		}
		out[ml.idxs[holder]].link = ml.link
	}
}

// rateMap is the rate bound's map of the probe object (bpf/capture.h),
// one bucket per CPU and entry.
const rateMap = "bpfcap_rate"

// multiLink is a link of a shared program and the targets it attaches,
// by index.
type multiLink struct {
	link link.Link
	idxs []int
}

// attachMulti attaches prog to the functions of the targets at idxs
// through kprobe-multi links, each function with its target's index as the
// attach cookie. When the kernel refuses a set of functions, the set is
// halved until each function it refuses is alone: those are returned with
// why, the others attached. A refusal for want of privilege refuses the
// whole set at once.
func attachMulti(prog *ebpf.Program, targets []*Target, idxs []int) ([]multiLink, map[int]error) {
	var links []multiLink
	refused := map[int]error{}
	var attachSet func(set []int)
	attachSet = func(set []int) {
		opts := link.KprobeMultiOptions{
			Symbols: make([]string, len(set)),
			Cookies: make([]uint64, len(set)),
		}
		for j, i := range set {
			opts.Symbols[j], opts.Cookies[j] = targets[i].Name, uint64(i)
		}
		l, err := link.KprobeMulti(prog, opts)
		if err == nil {
			links = append(links, multiLink{link: l, idxs: set})
			return
		}
		if len(set) == 1 || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			for _, i := range set {
				refused[i] = featureError("attach kprobe-multi "+targets[i].String(), err)
			}
			return
		}
		half := len(set) / 2
		attachSet(set[:half])
		attachSet(set[half:])
	}
	attachSet(idxs)
	return links, refused
}

// perFunctionAttachThreads bounds the perf kprobes attached at once.
const perFunctionAttachThreads = 8

// attachPerFunction attaches prog to the function of each target at idxs
// as a perf kprobe, several at a time; with cookie, its link carries the
// target's index as the attach cookie (otherwise the program finds the
// index by the function's address). Those the kernel refuses are
// returned with why.
func attachPerFunction(prog *ebpf.Program, targets []*Target, idxs []int, cookie bool) ([]multiLink, map[int]error) {
	ls := make([]link.Link, len(idxs))
	errs := make([]error, len(idxs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(perFunctionAttachThreads, len(idxs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				t := targets[idxs[j]]
				var opts *link.KprobeOptions
				if cookie {
					opts = &link.KprobeOptions{Cookie: uint64(idxs[j])}
				}
				ls[j], errs[j] = link.Kprobe(t.Name, prog, opts)
				if errs[j] != nil {
					errs[j] = featureError("attach "+t.String(), errs[j])
				}
			}
		}()
	}
	for j := range idxs {
		work <- j
	}
	close(work)
	wg.Wait()
	var links []multiLink
	refused := map[int]error{}
	for j, i := range idxs {
		if errs[j] != nil {
			refused[i] = errs[j]
			continue
		}
		links = append(links, multiLink{link: ls[j], idxs: []int{i}})
	}
	return links, refused
}

// detachGroup detaches the links of every hook of a capture at once, when
// the first hook's links are closed (that close returns the errors,
// later ones nil): on many threads, because detaching a kprobe waits for an RCU
// grace period, and waits that overlap share one. Each hook lists the
// group as its link.
type detachGroup struct {
	once  sync.Once
	links []link.Link
	err   error
}

// detachThreads bounds the threads that wait for grace periods.
const detachThreads = 64

// Close detaches every link of the group.
func (g *detachGroup) Close() error {
	first := false
	g.once.Do(func() {
		first = true
		errs := make([]error, len(g.links))
		work := make(chan int)
		var wg sync.WaitGroup
		for range min(detachThreads, len(g.links)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					errs[i] = g.links[i].Close()
				}
			}()
		}
		for i := range g.links {
			work <- i
		}
		close(work)
		wg.Wait()
		g.err = errors.Join(errs...)
	})
	if !first {
		return nil
	}
	return g.err
}

// forAttach sets up the program spec ps to attach as t does (a
// kprobe-multi program is loaded with its own attach type).
func forAttach(ps *ebpf.ProgramSpec, t *Target) {
	if t.Multi {
		ps.AttachType = ebpf.AttachTraceKprobeMulti
	}
}

// compileOnce wraps compile (nil: filter.CompileNetmask) so that one
// filter is compiled once for all hooks of a session and loads running at
// once do not call libpcap concurrently.
func compileOnce(compile filter.CompileFunc) filter.CompileFunc {
	if compile == nil {
		compile = filter.CompileNetmask
	}
	type key struct {
		expr    string
		lt      filter.LinkType
		snaplen int
		netmask uint32
	}
	type result struct {
		insns []bpf.Instruction
		err   error
	}
	var (
		mu   sync.Mutex
		done = map[key]result{}
	)
	return func(expr string, lt filter.LinkType, snaplen int, netmask uint32) ([]bpf.Instruction, error) {
		mu.Lock()
		defer mu.Unlock()
		k := key{expr, lt, snaplen, netmask}
		if r, ok := done[k]; ok {
			return r.insns, r.err
		}
		insns, err := compile(expr, lt, snaplen, netmask)
		done[k] = result{insns, err}
		return insns, err
	}
}

// refusable reports whether a load or attach error of an optional target
// may be counted and passed over: anything but missing privilege.
func refusable(t *Target, err error) bool {
	return t.Optional && !errors.Is(err, hook.ErrPermission)
}

// AttachReport says what Open attached from the hook words it was given
// and how long that took.
type AttachReport struct {
	// Attached is the number of hooks attached.
	Attached int
	// Notes say what a glob was attached as instead of as written.
	Notes []string
	// Refused are the hook points matched but not attached, with why:
	// those the kernel cannot attach at all, and those whose program it
	// refused to load or attach.
	Refused []Refusal
	// Programs is the number of programs loaded for them: one per hook,
	// but one for many functions attached through one kprobe-multi link.
	Programs int
	// Resolve is how long finding the hook points took; Total includes
	// loading and attaching their programs, Parallel at a time.
	Resolve, Total time.Duration
	Parallel       int
}

// AttachReport returns what Open attached and how long it took.
func (s *Source) AttachReport() AttachReport { return s.report }

// nothingAttached is the error of a capture whose every hook point was
// refused.
func nothingAttached(all []Refusal) error {
	if len(all) == 0 {
		return fmt.Errorf("trace: no hook point to attach")
	}
	var names []string
	for _, r := range all[:min(3, len(all))] {
		names = append(names, r.Hook)
	}
	more := ""
	if len(all) > 3 {
		more = fmt.Sprintf(" and %d more", len(all)-3)
	}
	return fmt.Errorf("trace: no hook attached: %s%s refused; the first: %w", strings.Join(names, ", "), more, all[0].Err)
}
