package perfring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
)

// ErrClosed is returned by reads on a closed Reader.
var ErrClosed = os.ErrClosed

// Options configure a Reader.
type Options struct {
	// PollInterval is how long a batch waits for records that the kernel
	// did not wake the reader for (default 50 ms).
	PollInterval time.Duration
	// PerCPUBuffer is the perf buffer size per CPU in bytes (perf only;
	// default 1 MiB, rounded up to pages by cilium/ebpf).
	PerCPUBuffer int
	// Watermark is the number of bytes a perf buffer holds before the
	// kernel wakes the reader (perf only; default a quarter of the buffer).
	Watermark int
}

// Reader reads bpfcap records from a BPF ring buffer map or a perf event
// array. ReadBatch and Drain must not be called concurrently; Close may
// be called from another goroutine and interrupts them.
type Reader struct {
	rb   *ringReader
	pr   *perf.Reader
	poll time.Duration

	prRec perf.Record
	ev    Event

	// The callback of the ring read in progress, its last error and the
	// events passed to it; onRecord is bound once, so reads allocate
	// nothing.
	// Set per read: the callbacks and what they returned. decode and
	// onRing are the method values, made once so reads allocate nothing.
	fn     func(*Event) error
	rawFn  func(raw []byte) error
	fnErr  error
	passed int
	decode func(raw []byte) error
	onRing func(raw []byte) error

	lost    atomic.Uint64
	records atomic.Uint64
	bad     atomic.Uint64
}

// NewReader opens a reader on m, which must be a BPF_MAP_TYPE_RINGBUF or
// a BPF_MAP_TYPE_PERF_EVENT_ARRAY map.
func NewReader(m *ebpf.Map, opts Options) (*Reader, error) {
	r := &Reader{poll: opts.PollInterval}
	r.decode = r.decodeRecord
	r.onRing = r.ringRecord
	if r.poll <= 0 {
		r.poll = 50 * time.Millisecond
	}
	var err error
	switch m.Type() {
	case ebpf.RingBuf:
		r.rb, err = newRingReader(m)
		if err != nil {
			return nil, fmt.Errorf("open ringbuf reader: %w", err)
		}
	case ebpf.PerfEventArray:
		size := opts.PerCPUBuffer
		if size <= 0 {
			size = 1 << 20
		}
		wm := opts.Watermark
		if wm <= 0 {
			wm = size / 4
		}
		if wm >= size {
			wm = size / 2
		}
		r.pr, err = perf.NewReaderWithOptions(m, size, perf.ReaderOptions{Watermark: wm})
		if err != nil {
			return nil, fmt.Errorf("open perf reader: %w", err)
		}
	default:
		return nil, fmt.Errorf("open record reader: map %v has type %v, want ringbuf or perf event array", m, m.Type())
	}
	return r, nil
}

// Perf reports whether the reader reads a perf event array.
func (r *Reader) Perf() bool { return r.pr != nil }

// Lost returns the number of records the perf buffers reported lost (for
// ringbuf, losses are counted in BPF instead: see capture.h).
func (r *Reader) Lost() uint64 { return r.lost.Load() }

// Records returns the number of records decoded so far.
func (r *Reader) Records() uint64 { return r.records.Load() }

// Malformed returns the number of records that could not be decoded.
func (r *Reader) Malformed() uint64 { return r.bad.Load() }

// ReadBatch waits up to the poll interval for records and calls fn for
// each record available, decoded into an Event that is reused between
// calls (copy what must outlive fn). It returns the number of events
// passed to fn. A batch ends when the deadline passes and the ring is
// empty, or after about two poll intervals under constant load. An error
// from fn ends the batch and is returned as is; a closed reader returns
// ErrClosed.
func (r *Reader) ReadBatch(fn func(*Event) error) (int, error) {
	return r.read(time.Now().Add(r.poll), fn)
}

// Drain reads every record already in the ring without waiting, for the
// end of a capture (after the programs were detached): however long a
// slow reader takes to empty a full ring, not one poll interval's worth.
func (r *Reader) Drain(fn func(*Event) error) (int, error) {
	return drain(func() (int, error) { return r.read(time.Now(), fn) })
}

// drain calls read, which returns after about a poll interval, until a
// call finds no record.
func drain(read func() (int, error)) (int, error) {
	total := 0
	for {
		n, err := read()
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// ReadRawBatch is ReadBatch for records that are not bpfcap events (a BPF
// program's own record layout): fn gets each record's bytes, valid only
// until it returns.
func (r *Reader) ReadRawBatch(fn func(raw []byte) error) (int, error) {
	return r.readRaw(time.Now().Add(r.poll), fn)
}

// DrainRaw is Drain for records that are not bpfcap events (see
// ReadRawBatch).
func (r *Reader) DrainRaw(fn func(raw []byte) error) (int, error) {
	return drain(func() (int, error) { return r.readRaw(time.Now(), fn) })
}

// read passes the events that arrive before deadline to fn (under
// constant load, it returns after about two poll intervals).
func (r *Reader) read(deadline time.Time, fn func(*Event) error) (int, error) {
	r.fn = fn
	n, err := r.readRaw(deadline, r.decode)
	r.fn = nil
	return n, err
}

// errSkip tells readRaw a record was passed over (not counted).
var errSkip = errors.New("record skipped")

// decodeRecord decodes one record for read's fn; a malformed one is
// counted and skipped.
func (r *Reader) decodeRecord(raw []byte) error {
	if err := Decode(raw, &r.ev); err != nil {
		r.bad.Add(1)
		return errSkip
	}
	return r.fn(&r.ev)
}

// readRaw passes the records that arrive before deadline to fn, which may
// return errSkip for a record it passed over.
func (r *Reader) readRaw(deadline time.Time, fn func(raw []byte) error) (int, error) {
	stop := deadline.Add(r.poll)
	if r.rb != nil {
		r.rawFn, r.fnErr, r.passed = fn, nil, 0
		_, err := r.rb.read(deadline, stop, r.onRing)
		if err != nil && err != r.fnErr && !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("read record: %w", err)
		}
		r.rawFn = nil
		return r.passed, err
	}
	r.pr.SetDeadline(deadline)
	n := 0
	for {
		raw, err := r.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, nil
		}
		if errors.Is(err, perf.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return n, ErrClosed
		}
		if err != nil {
			return n, fmt.Errorf("read record: %w", err)
		}
		if raw == nil { // a loss report
			continue
		}
		err = fn(raw)
		if err == errSkip {
			continue
		}
		r.records.Add(1)
		n++
		if err != nil {
			return n, err
		}
		if n%256 == 0 && time.Now().After(stop) {
			return n, nil
		}
	}
}

// ringRecord passes one ring record to the read's callback and counts it.
func (r *Reader) ringRecord(raw []byte) error {
	err := r.rawFn(raw)
	if err == errSkip {
		return nil
	}
	r.records.Add(1)
	r.passed++
	r.fnErr = err
	return err
}

// next returns the next raw perf record, or nil for a loss report.
func (r *Reader) next() ([]byte, error) {
	if err := r.pr.ReadInto(&r.prRec); err != nil {
		return nil, err
	}
	if r.prRec.LostSamples > 0 {
		r.lost.Add(r.prRec.LostSamples)
		return nil, nil
	}
	return r.prRec.RawSample, nil
}

// Close closes the reader and interrupts a blocked ReadBatch.
func (r *Reader) Close() error {
	var err error
	if r.rb != nil {
		err = r.rb.close()
	} else {
		err = r.pr.Close()
	}
	if err != nil {
		return fmt.Errorf("close record reader: %w", err)
	}
	return nil
}
