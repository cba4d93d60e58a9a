package progcap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/perfring"
)

// Options configure a capture.
type Options struct {
	// Filter is a tcpdump filter expression run in userspace on every
	// record ("": everything).
	Filter string
	// Snaplen is the number of bytes per packet the program records
	// (default and upper bound: the program's BPFCAP_OUTPUT_MAX).
	Snaplen int
	// LinkType is the interface declared when opening (default Ethernet).
	// Records of other link types get an interface of their own when
	// they first arrive.
	LinkType pcapng.LinkType
	// PollInterval is how long a batch waits for records (default 50 ms).
	PollInterval time.Duration
	// Notices receives one-line notices (a capture taken over, a filter
	// that cannot be compiled for a link type); nil: discarded.
	Notices io.Writer
	// Compile compiles the filter (nil: filter.Compile, in this process).
	Compile filter.CompileFunc
}

// Capture is a running capture of one program's bpfcap_output() records.
// It implements bpfcap.Source.
type Capture struct {
	prog    *ebpf.Program
	desc    string
	name    string
	maps    *progMaps
	cfg     []byte // the mmap of bpfcap_config
	rd      *perfring.Reader
	opts    Options
	snaplen int
	start   uint64 // CLOCK_MONOTONIC when capture was turned on
	clock   hook.Clock

	// Run's state (one goroutine).
	sink     pcapng.PacketWriter
	adder    pcapng.InterfaceAdder // nil: the sink adds no interfaces
	sinkErr  error                 // the error deliver returned last
	r        Record
	pkt      pcapng.Packet
	loss     hook.LossCounter
	matchers map[pcapng.LinkType]*filter.Matcher
	badLT    map[pcapng.LinkType]bool
	badRec   bool

	mu        sync.Mutex
	keptSeen  bool // Alive saw something else keep the program
	ifaces    []pcapng.Interface
	byLink    map[pcapng.LinkType]int
	received  []uint64
	written   []uint64
	rejected  []uint64
	lostFinal uint64
	stale     uint64
	malformed uint64

	closeOnce sync.Once
	closeErr  error
}

// Open finds the program sel names and its capture maps, turns capture
// on and returns the running capture. Errors: see FindProgram; a program
// without the capture maps wraps ErrNotFound and says to include
// bpf/bpfcap.h. Capture is off again whenever Open fails.
func Open(sel Selector, opts Options) (*Capture, error) {
	prog, err := FindProgram(sel)
	if err != nil {
		return nil, err
	}
	c, err := OpenProgram(prog, opts)
	if err != nil {
		prog.Close()
		return nil, err
	}
	return c, nil
}

// OpenProgram is Open for a program already at hand; the Capture takes
// ownership of prog on success only.
func OpenProgram(prog *ebpf.Program, opts Options) (_ *Capture, err error) {
	desc, id, name := describe(prog)
	if opts.LinkType == 0 {
		opts.LinkType = pcapng.LinkTypeEthernet
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	if opts.Snaplen < 0 {
		return nil, fmt.Errorf("snaplen %d: want a positive number of bytes", opts.Snaplen)
	}
	maps, err := findMaps(prog, desc)
	if err != nil {
		return nil, err
	}
	c := &Capture{
		prog: prog, desc: desc, name: name, maps: maps, opts: opts,
		matchers: map[pcapng.LinkType]*filter.Matcher{},
		badLT:    map[pcapng.LinkType]bool{},
		byLink:   map[pcapng.LinkType]int{},
	}
	if c.name == "" {
		c.name = "id" + strconv.FormatUint(uint64(id), 10)
	}
	defer func() {
		if err != nil {
			c.release(false)
		}
	}()
	c.snaplen = opts.Snaplen
	if maps.maxData > 0 && (c.snaplen == 0 || c.snaplen > maps.maxData) {
		if c.snaplen > maps.maxData {
			c.notice(fmt.Sprintf("%s records at most %d bytes per packet (BPFCAP_OUTPUT_MAX): snapshot length %d", desc, maps.maxData, maps.maxData))
		}
		c.snaplen = maps.maxData
	}
	if c.snaplen == 0 {
		c.snaplen = 65536
	}
	// Check the filter now for the declared link type, so a bad
	// expression fails before anything is turned on.
	if opts.Filter != "" {
		if _, err := c.matcher(opts.LinkType); err != nil {
			return nil, err
		}
	}
	c.cfg, err = unix.Mmap(maps.config.FD(), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		c.cfg = nil
		return nil, fmt.Errorf("%s: map %s into memory: %w", desc, ConfigMapName, err)
	}
	c.rd, err = perfring.NewReader(maps.events, perfring.Options{PollInterval: opts.PollInterval})
	if err != nil {
		return nil, fmt.Errorf("%s: read ring buffer %s: %w", desc, EventsMapName, err)
	}
	c.addInterfaceLocked(opts.LinkType)

	if atomic.LoadUint32(c.u32(cfgEnabled)) != 0 {
		owner := atomic.LoadUint32(c.u32(cfgOwner))
		if ownerAlive(owner, maps.config) {
			return nil, fmt.Errorf("%s: bpfcap pid %d captures from it and still runs: stop it first (kill -INT %d): %w", desc, owner, owner, ErrBusy)
		}
		who := "another bpfcap"
		if owner != 0 {
			who += " (pid " + strconv.FormatUint(uint64(owner), 10) + ")"
		}
		c.notice(fmt.Sprintf("capture of %s was already on, left by %s that did not exit cleanly or still runs: taking it over (records older than now are discarded)", desc, who))
	}
	c.clock = hook.NewClock()
	c.start = hook.MonoNow()
	c.loss = hook.NewLossCounter(atomic.LoadUint64(c.u64(cfgLost)))
	atomic.StoreUint32(c.u32(cfgSnaplen), uint32(c.snaplen))
	atomic.StoreUint32(c.u32(cfgOwner), uint32(os.Getpid()))
	atomic.StoreUint32(c.u32(cfgEnabled), 1)
	return c, nil
}

func (c *Capture) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&c.cfg[off])) }
func (c *Capture) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&c.cfg[off])) }

// Enabled reports whether the program's capture is on (for tests).
func (c *Capture) Enabled() bool {
	return c.cfg != nil && atomic.LoadUint32(c.u32(cfgEnabled)) != 0
}

// disable turns capture off if this process turned it on.
func (c *Capture) disable() {
	if c.cfg == nil {
		return
	}
	if atomic.LoadUint32(c.u32(cfgOwner)) == uint32(os.Getpid()) {
		atomic.StoreUint32(c.u32(cfgEnabled), 0)
		atomic.StoreUint32(c.u32(cfgOwner), 0)
	}
}

func (c *Capture) notice(msg string) {
	if c.opts.Notices != nil {
		fmt.Fprintln(c.opts.Notices, msg)
	}
}

// Program returns the captured program (owned by the Capture).
func (c *Capture) Program() *ebpf.Program { return c.prog }

// Interfaces returns one interface per link type, in the order they were
// declared: Options.LinkType first, then as records of new link types
// arrived.
func (c *Capture) Interfaces() []pcapng.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ifaces[:len(c.ifaces):len(c.ifaces)]
}

func (c *Capture) newInterface(lt pcapng.LinkType) pcapng.Interface {
	return pcapng.Interface{
		Name:        "prog:" + c.name,
		Description: c.desc + ": bpfcap_output() records, link type " + lt.String(),
		LinkType:    lt,
		SnapLen:     uint32(c.snaplen),
		Filter:      c.opts.Filter,
	}
}

func (c *Capture) addInterfaceLocked(lt pcapng.LinkType) int {
	c.ifaces = append(c.ifaces, c.newInterface(lt))
	c.received = append(c.received, 0)
	c.written = append(c.written, 0)
	c.rejected = append(c.rejected, 0)
	c.byLink[lt] = len(c.ifaces) - 1
	return len(c.ifaces) - 1
}

// Run writes the program's records to sink until ctx is done, then turns
// capture off, writes what is still in the ring and returns nil. Capture
// is off when Run returns, whatever the reason. New link
// types are announced through sink's pcapng.InterfaceAdder when it has
// one. Errors from sink end Run and are returned wrapped.
func (c *Capture) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	if c.rd == nil {
		return fmt.Errorf("capture %s: %w", c.desc, os.ErrClosed)
	}
	c.sink = sink
	c.adder, _ = sink.(pcapng.InterfaceAdder)
	defer c.disable() // on errors too: nothing reads the ring any more
	for ctx.Err() == nil {
		c.collectLost()
		n, err := c.read(c.rd.ReadRawBatch)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := sink.Flush(); err != nil {
				return fmt.Errorf("capture %s: flush output: %w", c.desc, err)
			}
		}
	}
	c.disable()
	c.collectLost()
	if _, err := c.read(c.rd.DrainRaw); err != nil {
		return err
	}
	if err := sink.Flush(); err != nil {
		return fmt.Errorf("capture %s: flush output: %w", c.desc, err)
	}
	return nil
}

// read writes one batch of records (batch is the reader's ReadRawBatch
// or DrainRaw) and returns how many it read.
func (c *Capture) read(batch func(func([]byte) error) (int, error)) (int, error) {
	c.sinkErr = nil
	n, err := batch(c.deliver)
	switch {
	case err == nil || err == c.sinkErr:
		return n, err
	case errors.Is(err, perfring.ErrClosed):
		return n, fmt.Errorf("capture %s: %w", c.desc, os.ErrClosed)
	}
	return n, fmt.Errorf("capture %s: read ring buffer: %w", c.desc, err)
}

// deliver turns one record into a packet and writes it to c.sink. Its
// errors are kept in c.sinkErr.
func (c *Capture) deliver(raw []byte) error {
	c.sinkErr = c.write(raw)
	return c.sinkErr
}

// write turns one record into a packet and writes it to c.sink.
func (c *Capture) write(raw []byte) error {
	r := &c.r
	if err := DecodeRecord(raw, r); err != nil {
		c.mu.Lock()
		c.malformed++
		c.mu.Unlock()
		if !c.badRec {
			c.badRec = true
			c.notice(fmt.Sprintf("%s: skipping records bpfcap cannot read: %v", c.desc, err))
		}
		return nil
	}
	if r.Timestamp < c.start {
		c.mu.Lock()
		c.stale++
		c.mu.Unlock()
		return nil
	}
	lt := pcapng.LinkType(r.LinkType)
	// Only Run's goroutine writes byLink (through addInterface): reading
	// it here needs no lock.
	idx, ok := c.byLink[lt]
	if !ok {
		var err error
		if idx, err = c.addInterface(lt, c.adder); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.received[idx]++
	c.mu.Unlock()
	if c.opts.Filter != "" {
		m, err := c.matcher(lt)
		if m == nil || !m.Match(r.Data, int(r.WireLen)) {
			if err != nil && !c.badLT[lt] {
				c.badLT[lt] = true
				c.notice(fmt.Sprintf("%s: link type %v: %v; its packets are left out", c.desc, lt, err))
			}
			c.mu.Lock()
			c.rejected[idx]++
			c.mu.Unlock()
			return nil
		}
	}
	p := &c.pkt
	*p = pcapng.Packet{
		Interface:   idx,
		Timestamp:   c.clock.WallTime(r.Timestamp),
		Data:        r.Data,
		WireLen:     int(r.WireLen),
		Flags:       pcapng.HasPacketID,
		PacketID:    r.ID,
		VerdictType: pcapng.VerdictNone,
	}
	c.loss.Stamp(p)
	if err := c.sink.WritePacket(p); err != nil {
		return fmt.Errorf("capture %s: %w", c.desc, err)
	}
	c.mu.Lock()
	c.written[idx]++
	c.mu.Unlock()
	return nil
}

// addInterface declares the interface of a new link type to the sink.
func (c *Capture) addInterface(lt pcapng.LinkType, adder pcapng.InterfaceAdder) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if adder != nil {
		got, err := adder.AddInterface(c.newInterface(lt))
		if err != nil {
			return 0, fmt.Errorf("capture %s: add interface for link type %v: %w", c.desc, lt, err)
		}
		if got != len(c.ifaces) {
			return 0, fmt.Errorf("capture %s: add interface for link type %v: sink returned index %d, want %d", c.desc, lt, got, len(c.ifaces))
		}
	}
	return c.addInterfaceLocked(lt), nil
}

// matcher returns the userspace filter for link type lt, compiling it on
// first use. An expression libpcap cannot compile for lt is an error.
func (c *Capture) matcher(lt pcapng.LinkType) (*filter.Matcher, error) {
	if m, ok := c.matchers[lt]; ok {
		if m == nil {
			return nil, fmt.Errorf("filter %q does not compile for it", c.opts.Filter)
		}
		return m, nil
	}
	flt := filter.LinkTypeFromFile(uint32(lt))
	compile := c.opts.Compile
	if compile == nil {
		compile = filter.CompileNetmask
	}
	// A program's records carry no device: netmask 0, as for files.
	prog, err := compile(c.opts.Filter, flt, c.snaplen, 0)
	var m *filter.Matcher
	if err == nil {
		m, err = filter.NewMatcher(prog)
	}
	c.matchers[lt] = m
	if err != nil {
		return nil, fmt.Errorf("filter for %s: %w", c.desc, err)
	}
	return m, nil
}

// collectLost reads the program's loss counter and schedules what is new
// for the next packet (epb_dropcount).
func (c *Capture) collectLost() {
	c.loss.Observe(atomic.LoadUint64(c.u64(cfgLost)))
	c.mu.Lock()
	c.lostFinal = c.loss.Lost()
	c.mu.Unlock()
}

// Stats returns each interface's counters: Matched counts the records of
// its link type, Captured those written, UserFiltered those the filter
// rejected. The records the program lost (ring full) cannot be told
// apart by link type: they are all counted on the first interface.
func (c *Capture) Stats() []pcapng.InterfaceStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := make([]pcapng.InterfaceStats, len(c.ifaces))
	for i := range st {
		st[i] = pcapng.InterfaceStats{Matched: c.received[i], Captured: c.written[i], UserFiltered: c.rejected[i]}
	}
	if len(st) > 0 {
		st[0].Lost = c.lostFinal
		// Records bpfcap cannot read (bad magic, version or length) are
		// counted, not written: "skipped" on stderr, isb_osdrop in the
		// file.
		st[0].Skipped = c.malformed
	}
	return st
}

// Stale returns the number of records discarded because they were older
// than the capture (left in the ring by an earlier capture).
func (c *Capture) Stale() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stale
}

// Close turns capture off and frees the ring reader, the maps and the
// program. It is safe to call more than once.
func (c *Capture) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.release(true) })
	return c.closeErr
}

// release turns capture off and frees everything (Close, and Open's
// failure paths, which leave the program to the caller).
func (c *Capture) release(closeProg bool) error {
	c.disable()
	var errs []error
	if c.rd != nil {
		if err := c.rd.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close ring reader: %w", err))
		}
	}
	if c.cfg != nil {
		if err := unix.Munmap(c.cfg); err != nil {
			errs = append(errs, fmt.Errorf("unmap %s: %w", ConfigMapName, err))
		}
		c.cfg = nil
	}
	c.maps.close()
	if closeProg {
		if err := c.prog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close program: %w", err))
		}
	}
	return errors.Join(errs...)
}
