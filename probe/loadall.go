package probe

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
)

// loadedHook is one target's program, loaded and attached, or why not.
type loadedHook struct {
	target *Target
	prog   *hook.Program
	link   link.Link
	err    error
}

// close detaches and frees what was loaded.
func (l *loadedHook) close() {
	if l.link != nil {
		l.link.Close()
	}
	l.prog.Close()
}

// loadAttachAll loads (with load) and attaches one program per target,
// up to one per CPU at a time: the verifier's work dominates, and it runs
// on the loading thread. The i-th result is targets[i]'s.
func loadAttachAll(targets []*Target, load func(i int, t *Target) (*hook.Program, error)) []loadedHook {
	out := make([]loadedHook, len(targets))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res := &out[i]
				res.target = targets[i]
				res.prog, res.err = load(i, targets[i])
				if res.err != nil {
					continue
				}
				res.link, res.err = attachTarget(targets[i], res.prog.Program, i)
				if res.err != nil {
					res.prog.Close()
					res.prog = nil
				}
			}
		}()
	}
	for i := range targets {
		work <- i
	}
	close(work)
	wg.Wait()
	return out
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

// attachTarget attaches prog, loaded for t as hook index idx. A kprobe
// meant for kprobe-multi attaches through a kprobe-multi link, with the
// hook index as its cookie; everything else as attach does.
func attachTarget(t *Target, prog *ebpf.Program, idx int) (link.Link, error) {
	if !t.Multi {
		return attach(t, prog)
	}
	l, err := link.KprobeMulti(prog, link.KprobeMultiOptions{
		Symbols: []string{t.Name},
		Cookies: []uint64{uint64(idx)},
	})
	if err != nil {
		return nil, featureError("attach kprobe-multi "+t.String(), err)
	}
	return l, nil
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
