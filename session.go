package bpfcap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// Options control how a Session ends and reports progress.
type Options struct {
	// Count stops the session after this many packets (0: no limit).
	Count uint64
	// Duration stops the session after this long (0: no limit).
	Duration time.Duration
	// ProgressInterval is how often Progress is called (0: never).
	ProgressInterval time.Duration
	// Progress receives the counters of every interface of every source
	// while the session runs (for -v and live counters). It runs on its
	// own goroutine.
	Progress func(Progress)
	// InterfacesOnFirstPacket adds each interface of the sources to the
	// sink only when its first packet arrives, instead of all of them
	// before the first packet: a capture at hundreds of hooks, of which a
	// few see the packets, then holds one Interface Description Block per
	// hook that captured, in the order they first did. Interfaces without
	// packets are left out of the sink, except that a sink no packet
	// reached gets the first interface (a pcapng file without one has no
	// link type, and readers refuse it). Result.Interfaces lists what the
	// sink got.
	InterfacesOnFirstPacket bool
}

// Progress is a snapshot of a running session.
type Progress struct {
	// Elapsed is the time since the session started.
	Elapsed time.Duration
	// Written is the number of packets written to the sink so far.
	Written uint64
	// Interfaces and Stats hold every interface of every source, in the
	// order they were added to the sink.
	Interfaces []pcapng.Interface
	Stats      []pcapng.InterfaceStats
}

// StopReason says why a session ended.
type StopReason string

// Reasons a session ends.
const (
	StopCancelled StopReason = "cancelled"  // ctx was cancelled (signal)
	StopCount     StopReason = "count"      // Options.Count packets written
	StopDuration  StopReason = "duration"   // Options.Duration elapsed
	StopSinkClose StopReason = "pipe-close" // the reader of the output went away
	StopSource    StopReason = "source-end" // every source returned by itself
	StopError     StopReason = "error"      // a source or the sink failed
	StopOutput    StopReason = "output"     // writing the output failed (a full disk)
	StopGone      StopReason = "gone"       // a source's capture target went away
)

// Result is what a finished session reports.
type Result struct {
	// Reason says why the session ended.
	Reason StopReason
	// Written is the number of packets written to the sink (for a
	// pcapng file: the packets the file holds).
	Written uint64
	// Unwritten is the number of packets the sink accepted but lost to a
	// failed write (a full disk); they are not in Written.
	Unwritten uint64
	// Interfaces and Stats: the final counters, as in Progress (with
	// Options.InterfacesOnFirstPacket, of the interfaces the sink got).
	Interfaces []pcapng.Interface
	Stats      []pcapng.InterfaceStats
}

// errStop tells a source that the session wants no more packets.
var errStop = errors.New("capture session stopped")

// Run drives sources into sink until ctx is cancelled, Options.Count
// packets were written, Options.Duration passed, a source ends, or the
// sink fails. It adds every source's interfaces to the sink first, and
// writes each interface's statistics and flushes the sink at the end, so
// a file written this way is always complete, whatever ended the session.
//
// A sink that fails with EPIPE (the reader of a pipe went away) ends the
// session cleanly: Run returns a nil error with Reason StopSinkClose.
// Run does not close the sources; the caller does, after Run returns.
func Run(ctx context.Context, sink Sink, sources []Source, opts Options) (Result, error) {
	start := time.Now()
	s := &session{sink: sink, count: opts.Count, sinks: make([]*sourceSink, len(sources))}
	for i, src := range sources {
		s.sinks[i] = &sourceSink{s: s}
		if opts.InterfacesOnFirstPacket {
			s.sinks[i].deferInterfaces(src.Interfaces())
			continue
		}
		for _, ifc := range src.Interfaces() {
			if _, err := s.sinks[i].addInterface(ifc); err != nil {
				return Result{Reason: StopError}, err
			}
		}
	}
	if err := sink.Flush(); err != nil {
		if isClosedPipe(err) {
			return s.result(StopSinkClose, sources), nil
		}
		return Result{Reason: StopError}, fmt.Errorf("write interfaces: %w", err)
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.cancel = cancel
	if opts.Duration > 0 {
		t := time.AfterFunc(opts.Duration, func() { cancel(errDuration) })
		defer t.Stop()
	}

	var wg sync.WaitGroup
	errs := make([]error, len(sources))
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.Run(runCtx, s.sinks[i])
			if err != nil && !errors.Is(err, errStop) {
				cancel(errSourceFailed) // one failing source ends the session
			}
			errs[i] = err
		}()
	}
	var gone error // set before cancel, read after wg.Wait
	livenessDone := make(chan struct{})
	var livenessWG sync.WaitGroup
	if checkers := livenessCheckers(sources); len(checkers) > 0 {
		livenessWG.Add(1)
		go func() {
			defer livenessWG.Done()
			t := time.NewTicker(livenessInterval)
			defer t.Stop()
			for {
				select {
				case <-livenessDone:
					return
				case <-runCtx.Done():
					return
				case <-t.C:
					for _, c := range checkers {
						if err := c.Alive(); err != nil {
							gone = err
							cancel(errGone)
							return
						}
					}
				}
			}
		}()
	}
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if opts.Progress != nil && opts.ProgressInterval > 0 {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			t := time.NewTicker(opts.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-t.C:
					r := s.result("", sources)
					opts.Progress(Progress{Elapsed: time.Since(start), Written: r.Written, Interfaces: r.Interfaces, Stats: r.Stats})
				}
			}
		}()
	}
	// Wait for every source. A source that ends cleanly on its own leaves
	// the others running; a failing one stops them all.
	wg.Wait()
	close(livenessDone)
	livenessWG.Wait()
	close(progressDone)
	progressWG.Wait() // no Progress call runs once Run returns

	reason := StopSource
	switch cause := context.Cause(runCtx); {
	case s.sinkErr != nil && isClosedPipe(s.sinkErr):
		reason = StopSinkClose
	case s.sinkErr != nil:
		reason = StopOutput
	case errors.Is(cause, errCount):
		reason = StopCount
	case errors.Is(cause, errDuration):
		reason = StopDuration
	case errors.Is(cause, errGone):
		reason = StopGone
	case ctx.Err() != nil:
		reason = StopCancelled
	}
	var runErr error
	for i, err := range errs {
		if err == nil || errors.Is(err, errStop) || (s.sinkErr != nil && errors.Is(err, s.sinkErr)) {
			continue
		}
		reason = StopError
		runErr = errors.Join(runErr, fmt.Errorf("source %d: %w", i, err))
	}
	if err := s.addAnInterface(); err != nil && s.sinkErr == nil {
		s.sinkErr = err
		reason = StopOutput
	}
	res := s.result(reason, sources)
	finishErr := finish(sink, res, start, s.sinkErr)
	if u, ok := sink.(unwrittenCounter); ok {
		res.Unwritten = u.Unwritten()
		res.Written -= min(res.Unwritten, res.Written)
	}
	if s.sinkErr != nil && !isClosedPipe(s.sinkErr) {
		return res, errors.Join(runErr, fmt.Errorf("write output: %w", s.sinkErr))
	}
	if finishErr != nil {
		return res, errors.Join(runErr, finishErr)
	}
	if reason == StopGone {
		return res, errors.Join(runErr, gone)
	}
	return res, runErr
}

// LivenessChecker is a Source that can tell whether what it captures from
// still exists (an interface, a hook map still pinned and used, a
// program): Run asks every livenessInterval and ends the session with
// StopGone and Alive's error when it does not.
type LivenessChecker interface {
	Alive() error
}

// livenessInterval is how often Run checks the sources' targets.
const livenessInterval = time.Second

func livenessCheckers(sources []Source) []LivenessChecker {
	var cs []LivenessChecker
	for _, src := range sources {
		if c, ok := src.(LivenessChecker); ok {
			cs = append(cs, c)
		}
	}
	return cs
}

// resumer is a sink that can go on after a failed write (pcapng.Writer
// on a file it cut back to a whole block).
type resumer interface{ Resume() error }

// unwrittenCounter is a sink that counts the packets a failed write lost.
type unwrittenCounter interface{ Unwritten() uint64 }

// finish writes every interface's statistics and flushes the sink. After
// a failed write (sinkErr) it tries once more if the sink can resume (a
// full disk may still take the small statistics blocks), ignoring errors:
// the sink keeps its output whole.
func finish(sink Sink, res Result, start time.Time, sinkErr error) error {
	if sinkErr != nil {
		r, ok := sink.(resumer)
		if isClosedPipe(sinkErr) || !ok || r.Resume() != nil {
			return nil
		}
	}
	end := time.Now()
	for i := range res.Interfaces {
		if err := sink.WriteStats(i, start, end, res.Stats[i]); err != nil {
			if isClosedPipe(err) || sinkErr != nil {
				return nil
			}
			return fmt.Errorf("write statistics: %w", err)
		}
	}
	if err := sink.Flush(); err != nil && !isClosedPipe(err) && sinkErr == nil {
		finish(sink, res, start, err) // the statistics may fit once cut back
		return fmt.Errorf("flush output: %w", err)
	}
	return nil
}

var (
	errCount    = errors.New("packet count reached")
	errDuration = errors.New("duration elapsed")
	errGone     = errors.New("capture target gone")

	errSourceFailed = errors.New("a source failed")
)

// isClosedPipe reports whether err means the reader of our output went
// away, which ends a capture cleanly (as `tcpdump | head` does).
func isClosedPipe(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// session serialises the sources' writes to the sink and counts packets.
type session struct {
	mu      sync.Mutex
	sink    Sink
	ifaces  []pcapng.Interface
	sinks   []*sourceSink // per source, in the order of Run's sources
	count   uint64
	written uint64
	sinkErr error
	cancel  context.CancelCauseFunc
}

func (s *session) result(reason StopReason, sources []Source) Result {
	s.mu.Lock()
	written := s.written
	ifaces := s.ifaces[:len(s.ifaces):len(s.ifaces)]
	ids := make([][]int, len(s.sinks))
	for i, w := range s.sinks {
		ids[i] = w.ids[:len(w.ids):len(w.ids)] // appends never change what is there
	}
	s.mu.Unlock()
	r := Result{Reason: reason, Written: written, Interfaces: ifaces}
	r.Stats = make([]pcapng.InterfaceStats, len(ifaces))
	for i, src := range sources {
		st := src.Stats()
		for local, idx := range ids[i] {
			if local < len(st) && idx >= 0 {
				r.Stats[idx] = st[local]
			}
		}
	}
	return r
}

// sourceSink is the PacketWriter one source writes to: it maps the
// source's interface indexes to the session's numbering, and lets the
// source add interfaces while it runs (InterfaceAdder).
type sourceSink struct {
	s *session
	// ids maps a source interface index to the session's; notAdded for
	// an interface deferred to its first packet.
	ids []int
	// deferred holds the source's interfaces not added until their first
	// packet (Options.InterfacesOnFirstPacket), by source index.
	deferred []pcapng.Interface
}

// notAdded marks a source interface the sink has not got yet.
const notAdded = -1

// deferInterfaces records the source's interfaces, to be added to the
// sink as their first packets arrive.
func (w *sourceSink) deferInterfaces(ifaces []pcapng.Interface) {
	w.deferred = ifaces
	w.ids = make([]int, len(ifaces))
	for i := range w.ids {
		w.ids[i] = notAdded
	}
}

// ensureInterface adds the deferred source interface local to the sink
// if it has not got it yet; the caller holds s.mu.
func (w *sourceSink) ensureInterface(local int) error {
	if local < 0 || local >= len(w.ids) || w.ids[local] != notAdded {
		return nil
	}
	idx, err := w.s.sink.AddInterface(w.deferred[local])
	if err != nil {
		return fmt.Errorf("add interface %q: %w", w.deferred[local].Name, err)
	}
	if idx != len(w.s.ifaces) {
		return fmt.Errorf("add interface %q: sink returned index %d, want %d", w.deferred[local].Name, idx, len(w.s.ifaces))
	}
	w.s.ifaces = append(w.s.ifaces, w.deferred[local])
	w.ids[local] = idx
	return nil
}

// addAnInterface gives a sink that got no interface (every one deferred,
// no packet arrived) the first deferred one, so that a file names its link
// type.
func (s *session) addAnInterface() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ifaces) > 0 {
		return nil
	}
	for _, w := range s.sinks {
		if len(w.deferred) > 0 {
			return w.ensureInterface(0)
		}
	}
	return nil
}

// AddInterface adds an interface the source found while running: it is
// written to the sink at once and returns the source's index for it.
func (w *sourceSink) AddInterface(ifc pcapng.Interface) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.sinkErr != nil {
		return 0, w.s.sinkErr
	}
	return w.addInterface(ifc)
}

// addInterface adds ifc to the sink; the caller holds s.mu or runs before
// the sources start.
func (w *sourceSink) addInterface(ifc pcapng.Interface) (int, error) {
	s := w.s
	idx, err := s.sink.AddInterface(ifc)
	if err != nil {
		return 0, fmt.Errorf("add interface %q: %w", ifc.Name, err)
	}
	if idx != len(s.ifaces) {
		return 0, fmt.Errorf("add interface %q: sink returned index %d, want %d", ifc.Name, idx, len(s.ifaces))
	}
	s.ifaces = append(s.ifaces, ifc)
	w.ids = append(w.ids, idx)
	return len(w.ids) - 1, nil
}

func (w *sourceSink) WritePacket(p *pcapng.Packet) error {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sinkErr != nil {
		return s.sinkErr
	}
	if s.count > 0 && s.written >= s.count {
		return errStop
	}
	local := p.Interface
	if local < 0 || local >= len(w.ids) {
		return fmt.Errorf("write packet: source interface %d not added (have %d)", local, len(w.ids))
	}
	err := w.ensureInterface(local)
	if err == nil {
		p.Interface = w.ids[local]
		err = s.sink.WritePacket(p)
	}
	p.Interface = local
	if err != nil {
		s.sinkErr = err
		s.cancel(err)
		return err
	}
	s.written++
	if s.count > 0 && s.written >= s.count {
		s.cancel(errCount)
	}
	return nil
}

// WriteRawPackets passes a source's encoded blocks to the sink in bulk
// when the sink takes them (a pcapng file or pipe; not the summary
// printer): it moves the blocks' interface IDs by the source's base and
// stops at the -c count like WritePacket.
func (w *sourceSink) WriteRawPackets(b []byte, n int) (int, error) {
	raw, ok := w.s.sink.(pcapng.RawPacketWriter)
	if !ok {
		return 0, fmt.Errorf("the output takes packets one by one: %w", errors.ErrUnsupported)
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sinkErr != nil {
		return 0, s.sinkErr
	}
	if s.count > 0 && s.written >= s.count {
		return 0, errStop
	}
	take := n
	if s.count > 0 && s.written+uint64(n) > s.count {
		take = int(s.count - s.written)
	}
	if w.deferred != nil {
		if err := w.ensureInterfacesOf(b, take); err != nil {
			s.sinkErr = err
			s.cancel(err)
			return 0, err
		}
	}
	end, err := pcapng.RenumberPackets(b, take, w.ids)
	if err != nil {
		return 0, err
	}
	wrote, err := raw.WriteRawPackets(b[:end], take)
	s.written += uint64(wrote)
	if err != nil {
		s.sinkErr = err
		s.cancel(err)
		return wrote, err
	}
	if s.count > 0 && s.written >= s.count {
		s.cancel(errCount)
		if take < n {
			return wrote, errStop
		}
	}
	return wrote, nil
}

// ensureInterfacesOf adds the deferred interfaces of the first n packet
// blocks of b; the caller holds s.mu. Blocks RenumberPackets would refuse
// are left to it.
func (w *sourceSink) ensureInterfacesOf(b []byte, n int) error {
	for range n {
		blk, rest, err := pcapng.SplitBlock(b)
		if err != nil || len(blk) < 16 {
			return nil
		}
		if err := w.ensureInterface(int(binary.LittleEndian.Uint32(blk[8:]))); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

func (w *sourceSink) Flush() error {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sinkErr != nil {
		return s.sinkErr
	}
	if err := s.sink.Flush(); err != nil {
		s.sinkErr = err
		s.cancel(err)
		return err
	}
	return nil
}
