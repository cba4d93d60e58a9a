//go:build dpdk

package dpdk

// #include <stdlib.h>
// #include "dpdkcap.h"
import "C"

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/bpfcap/bpfcap/pcapng"
)

const (
	outBufSize        = 4 << 20
	flushInterval     = 100 * time.Millisecond
	aliveInterval     = 250 * time.Millisecond
	dropCheckInterval = 500 * time.Millisecond
	idleSleepStep     = 50 * time.Microsecond
	idleSleepMax      = 2 * time.Millisecond
)

// drainer is one Run: it moves the packets the primary copied into our
// ring to the sink, in bulk (encoded blocks) where the sink takes them,
// one by one otherwise, and counts them per port.
type drainer struct {
	cp   *Capture
	sink pcapng.PacketWriter
	raw  pcapng.RawPacketWriter // nil: the sink takes packets one by one
	out  []byte                 // C buffer bc_drain fills with blocks
	res  C.struct_bc_drain_result
	pkt  pcapng.Packet
	// dirty says packets were written since the last flush.
	dirty     bool
	lastFlush time.Time
	// delta and drained are per port: this batch's count and C's running
	// total at the last batch.
	delta, drained []uint64
	// When the ring is empty: when the primary was last checked on, when
	// the drop counters were, and how long to sleep (longer each time).
	lastAlive, lastDropCheck time.Time
	sleep                    time.Duration
}

// loop runs on the EAL thread (its mempool cache is the fast one).
func (cp *Capture) loop(ctx context.Context, sink pcapng.PacketWriter) error {
	// However the loop ends (also -c or a failed sink), pdump stops
	// before Run returns, so the statistics the session writes are the
	// final ones.
	defer cp.disable()
	buf := C.malloc(outBufSize)
	if buf == nil {
		return errors.New("run DPDK capture: out of memory")
	}
	defer C.free(buf)
	now := time.Now()
	d := &drainer{
		cp:            cp,
		sink:          sink,
		out:           unsafe.Slice((*byte)(buf), outBufSize),
		lastFlush:     now,
		delta:         make([]uint64, len(cp.ports)),
		drained:       make([]uint64, len(cp.ports)),
		lastAlive:     now,
		lastDropCheck: now,
	}
	d.raw, _ = sink.(pcapng.RawPacketWriter)
	for {
		select {
		case <-ctx.Done():
			cp.disable()
			return d.finish()
		default:
		}
		n, err := d.drain()
		if err != nil {
			return err
		}
		if n > 0 {
			if err := d.busy(); err != nil {
				return err
			}
			continue
		}
		if done, err := d.idle(); done || err != nil {
			return err
		}
	}
}

// busy follows a burst that wrote packets: it flushes them once the last
// flush is flushInterval old or the ring is empty.
func (d *drainer) busy() error {
	d.sleep = 0
	if d.dirty && (time.Since(d.lastFlush) >= flushInterval || C.bc_capture_ring_count(d.cp.c) == 0 && d.res.left == 0) {
		return d.flush()
	}
	return nil
}

// idle follows an empty burst: it flushes what was written, checks now
// and then that the primary runs and copies packets, and sleeps a little
// longer each time. done says the capture is over: the primary exited
// (what was left is written) or err.
func (d *drainer) idle() (done bool, err error) {
	now := time.Now()
	if d.dirty {
		if err := d.flush(); err != nil {
			return true, err
		}
	}
	if now.Sub(d.lastAlive) >= aliveInterval {
		d.lastAlive = now
		if !d.cp.p.PrimaryAlive() {
			d.cp.primaryGone.Store(true)
			return true, d.finish()
		}
	}
	if now.Sub(d.lastDropCheck) >= dropCheckInterval {
		d.lastDropCheck = now
		if err := d.cp.checkAllDropped(); err != nil {
			return true, err
		}
	}
	if d.sleep < idleSleepMax {
		d.sleep += idleSleepStep
	}
	time.Sleep(d.sleep)
	return false, nil
}

// drain writes one burst from the ring and returns how many packets it
// wrote.
func (d *drainer) drain() (int, error) {
	cp := d.cp
	C.bc_drain(cp.c, (*C.uint8_t)(unsafe.Pointer(&d.out[0])), outBufSize, C.BC_BURST, &d.res)
	n := int(d.res.packets)
	if n == 0 {
		return 0, nil
	}
	cp.tsFixed.Store(uint64(cp.c.ts_fixed))
	cp.tsGuessed.Store(uint64(cp.c.ts_guessed))
	b := d.out[:d.res.bytes]
	// Per-port counts of this batch, from C's running totals.
	exact := cp.match == nil
	for i := range cp.ports {
		total := uint64(cp.c.captured[i])
		d.delta[i], d.drained[i] = total-d.drained[i], total
	}
	if cp.match != nil {
		b, n = cp.userFilter(b, n)
	}
	if n == 0 {
		return 0, nil
	}
	d.dirty = true
	if d.raw == nil {
		return d.writeDecoded(b, n)
	}
	w, err := d.raw.WriteRawPackets(b, n)
	if w == 0 && errors.Is(err, errors.ErrUnsupported) {
		// The sink only looks like it takes blocks (a session over a
		// summary printer): decode from now on.
		d.raw = nil
		return d.writeDecoded(b, n)
	}
	if w == n && exact {
		for i := range cp.ports {
			cp.captured[i].Add(d.delta[i])
		}
	} else {
		cp.countBlocks(b, w)
	}
	return n, err
}

// writeDecoded writes the n blocks in b one packet at a time.
func (d *drainer) writeDecoded(b []byte, n int) (int, error) {
	for len(b) > 0 {
		var blk []byte
		var err error
		if blk, b, err = pcapng.SplitBlock(b); err != nil {
			return n, err
		}
		if err := pcapng.DecodeEPB(blk, &d.pkt); err != nil {
			return n, err
		}
		if err := d.sink.WritePacket(&d.pkt); err != nil {
			return n, err
		}
		if d.pkt.Interface < len(d.cp.captured) {
			d.cp.captured[d.pkt.Interface].Add(1)
		}
	}
	return n, nil
}

func (d *drainer) flush() error {
	d.dirty = false
	d.lastFlush = time.Now()
	return d.sink.Flush()
}

// finish drains what the primary already copied, then flushes.
func (d *drainer) finish() error {
	for {
		n, err := d.drain()
		if err != nil {
			return err
		}
		if n == 0 && d.res.left == 0 {
			break
		}
	}
	return d.flush()
}

// countBlocks adds the first n blocks of b to the captured counters.
func (cp *Capture) countBlocks(b []byte, n int) {
	var pkt pcapng.Packet
	for ; n > 0; n-- {
		blk, rest, err := pcapng.SplitBlock(b)
		if err != nil {
			return
		}
		b = rest
		if pcapng.DecodeEPB(blk, &pkt) == nil && pkt.Interface < len(cp.captured) {
			cp.captured[pkt.Interface].Add(1)
		}
	}
}
