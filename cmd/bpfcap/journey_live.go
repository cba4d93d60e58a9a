package main

import (
	"bufio"
	"container/list"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// journeyIdle is how long the live journey view waits for another hop of
// a packet before it prints the packet's journey: a packet that is not
// freed at a hook the capture has (it left through a device, or sits in a
// socket's queue) is shown once it has been quiet this long.
const journeyIdle = time.Second

// maxOpenJourneys bounds the journeys the live view holds at once: past
// it, the oldest is printed as it stands (a flood of packets that are
// never freed at a traced hook cannot grow the memory without end).
const maxOpenJourneys = 4096

// maxJourneyHops bounds one journey's hops: a journey this long is
// printed, and further hops of the packet start another block.
const maxJourneyHops = 512

// journeyPrinter is the live journey view of `bpfcap trace`: a Sink that
// groups the packets by packet id and prints each packet's journey
// (writeJourney, as `bpfcap journey FILE` does) when the packet is freed
// (a hook of the kfree_skb/consume_skb family), when no hop of it came
// for journeyIdle, when more than maxOpenJourneys are open (the oldest),
// and at Close. A packet without an id is a journey of one hop, printed at
// once.
type journeyPrinter struct {
	mu      sync.Mutex
	w       *bufio.Writer
	ifaces  []pcapng.Interface
	open    map[uint64]*openJourney
	order   *list.List // of *openJourney, first seen first
	printed bool       // a block was printed (blocks are separated by a blank line)
	err     error      // the first failed write, returned by the next call
	idle    time.Duration
	stop    chan struct{}
	done    chan struct{}
}

// openJourney is a journey the live view still adds hops to.
type openJourney struct {
	journey
	lastHop time.Time // when its last hop arrived (wall clock)
	elem    *list.Element
}

// newJourneyPrinter returns the live journey view on w; it prints
// journeys idle for idle from its own goroutine until Close.
func newJourneyPrinter(w io.Writer, idle time.Duration) *journeyPrinter {
	jp := &journeyPrinter{
		w:     bufio.NewWriter(w),
		open:  map[uint64]*openJourney{},
		order: list.New(),
		idle:  idle,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go jp.printIdle()
	return jp
}

// AddInterface records a capture point; packets name their hook by it.
func (jp *journeyPrinter) AddInterface(ifc pcapng.Interface) (int, error) {
	jp.mu.Lock()
	defer jp.mu.Unlock()
	jp.ifaces = append(jp.ifaces, ifc)
	return len(jp.ifaces) - 1, nil
}

// WritePacket adds p as a hop of its packet's journey.
func (jp *journeyPrinter) WritePacket(p *pcapng.Packet) error {
	h := packetHop(p)
	jp.mu.Lock()
	defer jp.mu.Unlock()
	if jp.err != nil {
		return jp.err
	}
	if h.Hook == "" && p.Interface >= 0 && p.Interface < len(jp.ifaces) {
		h.Hook = jp.ifaces[p.Interface].Name
	}
	if p.Flags&pcapng.HasPacketID == 0 {
		jp.print(&journey{Hops: []hop{h}})
		return jp.err
	}
	j := jp.open[p.PacketID]
	if j == nil {
		if jp.order.Len() >= maxOpenJourneys {
			jp.end(jp.order.Front().Value.(*openJourney))
		}
		j = &openJourney{journey: journey{ID: p.PacketID, HasID: true}}
		j.elem = jp.order.PushBack(j)
		jp.open[p.PacketID] = j
	}
	j.Hops = append(j.Hops, h)
	j.lastHop = time.Now()
	// Once freed, the id may come back on another packet.
	if frees(h.Hook) || len(j.Hops) >= maxJourneyHops {
		jp.end(j)
	}
	return jp.err
}

// end prints an open journey and forgets it; the caller holds mu.
func (jp *journeyPrinter) end(j *openJourney) {
	jp.order.Remove(j.elem)
	delete(jp.open, j.ID)
	// Hops recorded on different CPUs arrive slightly out of order.
	slices.SortStableFunc(j.Hops, func(a, b hop) int { return a.Time.Compare(b.Time) })
	jp.print(&j.journey)
}

// print writes one block; the caller holds mu.
func (jp *journeyPrinter) print(j *journey) {
	if jp.err != nil {
		return
	}
	if jp.printed {
		if _, err := jp.w.WriteString("\n"); err != nil {
			jp.err = err
			return
		}
	}
	jp.printed = true
	if err := writeJourney(jp.w, j); err != nil {
		jp.err = err
	}
}

// printIdle prints, a few times per idle period, the journeys no hop
// came to for jp.idle, until Close.
func (jp *journeyPrinter) printIdle() {
	defer close(jp.done)
	t := time.NewTicker(jp.idle / 4)
	defer t.Stop()
	for {
		select {
		case <-jp.stop:
			return
		case <-t.C:
		}
		jp.mu.Lock()
		before := time.Now().Add(-jp.idle)
		printed := false
		for e := jp.order.Front(); e != nil; {
			next := e.Next()
			if j := e.Value.(*openJourney); j.lastHop.Before(before) {
				jp.end(j)
				printed = true
			}
			e = next
		}
		if printed && jp.err == nil {
			jp.err = jp.w.Flush()
		}
		jp.mu.Unlock()
	}
}

// WriteStats does nothing: the view has no statistics (they go to
// stderr).
func (jp *journeyPrinter) WriteStats(int, time.Time, time.Time, pcapng.InterfaceStats) error {
	return nil
}

// Flush writes the blocks printed so far.
func (jp *journeyPrinter) Flush() error {
	jp.mu.Lock()
	defer jp.mu.Unlock()
	if jp.err == nil {
		jp.err = jp.w.Flush()
	}
	return jp.err
}

// Close stops the idle timer and prints the journeys still open, in the
// order their packets were first seen.
func (jp *journeyPrinter) Close() error {
	close(jp.stop)
	<-jp.done
	jp.mu.Lock()
	for jp.order.Len() > 0 {
		jp.end(jp.order.Front().Value.(*openJourney))
	}
	jp.mu.Unlock()
	return jp.Flush()
}
