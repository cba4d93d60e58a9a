package hook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/bpfcap/bpfcap/internal/netnsfind"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/perfring"
)

// Hook is one capture point as a Source reports it: one or more attached
// programs whose records carry the same hook index.
type Hook struct {
	// Programs are the loaded programs (Load) that capture at this hook,
	// at least one: copies of one program loaded with the same hook index,
	// filter and link type, e.g. one per action slot of an XDP tail-call
	// hook. Source.Close closes them.
	Programs []*Program
	// Links are what attach the programs (links, hook map slots, ...);
	// Source detaches them, in reverse order, when the capture stops.
	Links []io.Closer
	// Interface describes the hook in the output: Name is the hook spec
	// (e.g. "tp_btf:kfree_skb"). LinkType, SnapLen and Filter are taken
	// from the first program when left zero.
	Interface pcapng.Interface
	// ExtraLinkTypes are other link types the program may emit (e.g. raw
	// IP for packets without a MAC header); each gets its own interface.
	ExtraLinkTypes []pcapng.LinkType
	// VerdictType says how to write the events' verdicts (XDP or tc).
	VerdictType pcapng.VerdictType
	// SeenNotCounted says the program does not count every packet it
	// sees (StatSeen stays 0), so statistics must not report a figure.
	SeenNotCounted bool
	// CookRaw writes the program's raw IP packets (LinkTypeRaw) on a Linux
	// cooked capture interface (LinkTypeLinuxSLL) instead, each behind a
	// 16-byte header naming IPv4 or IPv6. libpcap 1.10 compares every
	// interface's link type with the first one's after mapping LINKTYPE_RAW
	// (101) to DLT_RAW (12), so it refuses a file with two raw IP
	// interfaces; two cooked ones it reads.
	CookRaw bool

	// matcher filters the records of a program that captures unfiltered
	// (the kernel refused the filter); undecided filters those the kernel
	// filter flags as undecided (filter.Undecided: a protochain loop
	// longer than it unrolls). Set by NewSource from Programs.
	matcher, undecided *userFilter
}

// SourceOptions add names to the raw numbers in events.
type SourceOptions struct {
	// DropReason names an skb_drop_reason value (nil: the number).
	DropReason func(reason uint32) string
	// DeviceName names a device (nil: looked up in the packet's netns,
	// found by its inode among the named namespaces and those of
	// processes; "ifindex N" where none has it). Called once per
	// (ifindex, netns); cached.
	DeviceName func(ifindex, netns uint32) string
	// Comment returns the words a packet's comment gets after bpfcap's
	// metadata, e.g. "location=kfree_skb_reason+0x4a" (nil: none).
	Comment func(ev *perfring.EventHeader) string
}

// Source reads a Ring and turns its records into pcapng packets for the
// hooks it was given. It implements bpfcap.Source.
type Source struct {
	ring  *Ring
	hooks []Hook
	opts  SourceOptions

	ifaces []pcapng.Interface
	// ifIndex maps (hook index, link type) to an interface index.
	ifIndex map[ifKey]int
	byHook  map[int]*Hook

	mu           sync.Mutex
	userFiltered map[int]uint64  // per hook index
	written      []atomic.Uint64 // per interface; counted without mu
	unknown      uint64          // records of unknown hooks or link types
	final        []pcapng.InterfaceStats
	detached     bool
	detachOn     func(func() error) error // nil: detach in place
	closed       bool

	// losses and dropPending carry the kernel's loss counter into
	// epb_dropcount: per hook index, the counter followed and the losses
	// to report with the hook's next packet. Used by Run's goroutine only.
	losses      map[int]*LossCounter
	dropPending map[int]uint64
	// pending is how many hooks have losses in dropPending, so that
	// deliver looks the map up only then.
	pending int

	// route is where the previous record went: records come in runs from
	// one hook and link type, so most skip the map lookups.
	route struct {
		key  ifKey
		hook *Hook
		ifc  int
		ok   bool
	}
	// dev is the device name of the previous record, comm its task's
	// name: most records repeat them, and a map lookup costs more than
	// the comparison.
	dev struct {
		ifindex, netns uint32
		name           string
	}
	comm struct {
		raw  [16]byte
		name string
		ok   bool
	}

	// links serve several hooks (detached after the hooks' own links);
	// closers are closed last (Builder.Detach, Builder.OnClose).
	links, closers []io.Closer

	devNames map[uint64]string
	namer    *netnsfind.Namer
	comms    map[[16]byte]string
	reasons  map[uint32]string
	pkt      pcapng.Packet
	cooked   []byte // CookRaw's buffer: header and packet, reused
}

type ifKey struct {
	hook int
	lt   pcapng.LinkType
}

// NewSource takes ownership of ring and of every hook's programs and
// links: Close releases them all (even when NewSource fails). A capture
// site builds its Source with a Builder.
func NewSource(ring *Ring, hooks []Hook, opts SourceOptions) (*Source, error) {
	return newSource(ring, hooks, opts, nil, nil)
}

func newSource(ring *Ring, hooks []Hook, opts SourceOptions, links, closers []io.Closer) (*Source, error) {
	s := &Source{
		links:        links,
		closers:      closers,
		ring:         ring,
		hooks:        hooks,
		opts:         opts,
		ifIndex:      map[ifKey]int{},
		byHook:       map[int]*Hook{},
		userFiltered: map[int]uint64{},
		losses:       map[int]*LossCounter{},
		dropPending:  map[int]uint64{},
		devNames:     map[uint64]string{},
		comms:        map[[16]byte]string{},
		reasons:      map[uint32]string{},
	}
	for i := range s.hooks {
		h := &s.hooks[i]
		if len(h.Programs) == 0 || slices.Contains(h.Programs, nil) {
			s.Close()
			return nil, fmt.Errorf("capture source: hook %d (%s) has no program", i, h.Interface.Name)
		}
		first := h.Programs[0]
		idx := first.Options.Hook
		fallback := ""
		for _, p := range h.Programs {
			if p.Options.Hook != idx || p.Options.LinkType != first.Options.LinkType || p.Options.Filter != first.Options.Filter {
				s.Close()
				return nil, fmt.Errorf("capture source: hook %d (%s): its programs differ in hook index, link type or filter", i, h.Interface.Name)
			}
			// A program that fell back captures unfiltered: filtering the
			// hook's every record again in userspace is still right.
			h.matcher = cmp.Or(h.matcher, p.matcher)
			h.undecided = cmp.Or(h.undecided, p.undecided)
			fallback = cmp.Or(fallback, p.Fallback)
		}
		if _, dup := s.byHook[idx]; dup {
			s.Close()
			return nil, fmt.Errorf("capture source: two hooks use hook index %d", idx)
		}
		s.byHook[idx] = h
		ifc := h.Interface
		if ifc.LinkType == 0 {
			ifc.LinkType = first.Options.LinkType
		}
		if ifc.SnapLen == 0 {
			ifc.SnapLen = uint32(first.Options.Snaplen)
		}
		if ifc.Filter == "" {
			ifc.Filter = first.Options.Filter
		}
		if h.CookRaw {
			ifc.LinkType = pcapng.LinkTypeLinuxSLL
			if ifc.SnapLen > 0 {
				ifc.SnapLen += sllHeaderLen
			}
		}
		if fallback != "" && first.Options.Filter != "" {
			ifc.Description = joinNonEmpty(ifc.Description, "filtered in userspace: "+fallback)
		}
		for _, lt := range append([]pcapng.LinkType{ifc.LinkType}, h.ExtraLinkTypes...) {
			if _, ok := s.ifIndex[ifKey{idx, lt}]; ok {
				continue
			}
			c := ifc
			c.LinkType = lt
			s.ifIndex[ifKey{idx, lt}] = len(s.ifaces)
			s.ifaces = append(s.ifaces, c)
		}
	}
	s.written = make([]atomic.Uint64, len(s.ifaces))
	return s, nil
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Interfaces returns one interface per (hook, link type).
func (s *Source) Interfaces() []pcapng.Interface { return s.ifaces }

// Run reads records and writes them to sink until ctx is done; then it
// detaches every hook, drains the ring and returns nil. Errors from sink
// end Run and are returned wrapped.
func (s *Source) Run(ctx context.Context, sink pcapng.PacketWriter) error {
	rd := s.ring.Reader()
	if rd == nil {
		return fmt.Errorf("capture source: %w", os.ErrClosed)
	}
	write := func(ev *perfring.Event) error { return s.deliver(ev, sink) }
	for ctx.Err() == nil {
		s.collectLosses()
		n, err := rd.ReadBatch(write)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if n > 0 {
			if err := sink.Flush(); err != nil {
				return fmt.Errorf("capture: flush output: %w", err)
			}
		}
	}
	detachErr := s.detach()
	if _, err := rd.Drain(write); err != nil {
		return fmt.Errorf("capture: drain ring: %w", err)
	}
	if err := sink.Flush(); err != nil {
		return fmt.Errorf("capture: flush output: %w", err)
	}
	s.snapshot()
	return detachErr
}

// deliver turns one event into a packet and writes it. It allocates
// nothing once the names it caches are known, and takes no lock for a
// packet written.
func (s *Source) deliver(ev *perfring.Event, sink pcapng.PacketWriter) error {
	lt := pcapng.LinkType(ev.LinkType)
	key := ifKey{int(ev.Hook), lt}
	if !s.route.ok || s.route.key != key {
		h := s.byHook[key.hook]
		if h != nil && h.CookRaw && lt == pcapng.LinkTypeRaw {
			lt = pcapng.LinkTypeLinuxSLL
		}
		ifc, ok := s.ifIndex[ifKey{key.hook, lt}]
		if h == nil || !ok {
			s.mu.Lock()
			s.unknown++
			s.mu.Unlock()
			return nil
		}
		s.route.key, s.route.hook, s.route.ifc, s.route.ok = key, h, ifc, true
	}
	h, ifc := s.route.hook, s.route.ifc
	lt = s.ifaces[ifc].LinkType
	m := h.matcher
	if ev.Flags&perfring.FlagUndecided != 0 {
		// The kernel filter kept the packet without a verdict: its
		// protochain loop was longer than the translation unrolls.
		// Matcher follows it, on the captured bytes.
		m = h.undecided
	}
	if m != nil && !m.match(ev.Data, int(ev.WireLen)) {
		s.mu.Lock()
		s.userFiltered[int(ev.Hook)]++
		s.mu.Unlock()
		return nil
	}
	// The packet is reused field by field: assigning a whole Packet
	// literal costs a tenth of this function (a copy of ~200 bytes with
	// pointer writes). Comment is set only by SourceOptions.Comment, for
	// every packet.
	p := &s.pkt
	p.Interface = ifc
	p.Hook = s.ifaces[ifc].Name // for live readers; the writer leaves it to if_name
	p.Timestamp = s.ring.WallTime(ev.Timestamp)
	p.Data = ev.Data
	p.WireLen = int(ev.WireLen)
	p.Flags = 0
	p.PacketID, p.Queue, p.DropCount, p.PID, p.Netns, p.Mark = 0, 0, 0, 0, 0, 0
	p.Direction = pcapng.DirectionUnknown
	p.VerdictType, p.Verdict = pcapng.VerdictNone, 0
	p.DropReason, p.Device, p.Comm = "", "", ""
	if s.pending > 0 {
		if d := s.dropPending[int(ev.Hook)]; d > 0 {
			p.Flags |= pcapng.HasDropCount
			p.DropCount = d
			s.dropPending[int(ev.Hook)] = 0
			s.pending--
		}
	}
	if ev.PacketID != 0 {
		p.Flags |= pcapng.HasPacketID
		p.PacketID = ev.PacketID
	}
	if h.VerdictType == pcapng.VerdictXDP {
		p.Flags |= pcapng.HasQueue
		p.Queue = ev.Queue
	}
	switch ev.Dir {
	case perfring.DirIn:
		p.Direction = pcapng.DirectionInbound
	case perfring.DirOut:
		p.Direction = pcapng.DirectionOutbound
	}
	if lt == pcapng.LinkTypeLinuxSLL && pcapng.LinkType(ev.LinkType) == pcapng.LinkTypeRaw {
		s.cooked = cookRaw(s.cooked[:0], ev.Data, p.Direction)
		p.Data = s.cooked
		p.WireLen += sllHeaderLen
	}
	if ev.Flags&perfring.FlagHasVerdict != 0 && h.VerdictType != pcapng.VerdictNone {
		p.VerdictType = h.VerdictType
		p.Verdict = int64(ev.Verdict)
	}
	if ev.Flags&perfring.FlagHasReason != 0 {
		p.DropReason = s.reasonName(ev.Reason)
	}
	if ev.Ifindex != 0 {
		if s.dev.name == "" || s.dev.ifindex != ev.Ifindex || s.dev.netns != ev.Netns {
			s.dev.ifindex, s.dev.netns, s.dev.name = ev.Ifindex, ev.Netns, s.deviceName(ev.Ifindex, ev.Netns)
		}
		p.Device = s.dev.name
	}
	if ev.Flags&perfring.FlagHasTask != 0 {
		p.Flags |= pcapng.HasPID
		p.PID = ev.PID
		if !s.comm.ok || s.comm.raw != ev.Comm {
			s.comm.raw, s.comm.name, s.comm.ok = ev.Comm, s.commString(&ev.Comm), true
		}
		p.Comm = s.comm.name
	}
	if ev.Netns != 0 {
		p.Flags |= pcapng.HasNetns
		p.Netns = ev.Netns
	}
	if ev.Mark != 0 {
		p.Flags |= pcapng.HasMark
		p.Mark = ev.Mark
	}
	if s.opts.Comment != nil {
		p.Comment = s.opts.Comment(&ev.EventHeader)
	}
	if err := sink.WritePacket(p); err != nil {
		return err
	}
	s.written[ifc].Add(1)
	return nil
}

// collectLosses reads each hook's loss counter and schedules what is new
// for the hook's next packet (epb_dropcount). Once per batch: one map
// lookup per hook.
func (s *Source) collectLosses() {
	for idx := range s.byHook {
		lost, err := s.ring.hookStat(idx, StatLost)
		if err != nil {
			continue
		}
		l := s.losses[idx]
		if l == nil {
			l = &LossCounter{}
			s.losses[idx] = l
		}
		l.Observe(lost)
		if d := l.Take(); d > 0 {
			if s.dropPending[idx] == 0 {
				s.pending++
			}
			s.dropPending[idx] += d
		}
	}
}

func (s *Source) reasonName(r uint32) string {
	if n, ok := s.reasons[r]; ok {
		return n
	}
	var n string
	if s.opts.DropReason != nil {
		n = s.opts.DropReason(r)
	}
	if n == "" {
		n = "reason " + strconv.FormatUint(uint64(r), 10)
	}
	s.reasons[r] = n
	return n
}

func (s *Source) deviceName(ifindex, netns uint32) string {
	key := uint64(netns)<<32 | uint64(ifindex)
	if n, ok := s.devNames[key]; ok {
		return n
	}
	var n string
	if s.opts.DeviceName != nil {
		n = s.opts.DeviceName(ifindex, netns)
	} else {
		// In the packet's own netns: an ifindex means nothing elsewhere.
		if s.namer == nil {
			s.namer = netnsfind.NewNamer()
		}
		n = s.namer.Name(ifindex, netns)
	}
	if n == "" {
		n = "ifindex " + strconv.FormatUint(uint64(ifindex), 10)
	}
	if len(s.devNames) < 4096 {
		s.devNames[key] = n
	}
	return n
}

func (s *Source) commString(c *[16]byte) string {
	if n, ok := s.comms[*c]; ok {
		return n
	}
	h := perfring.EventHeader{Comm: *c}
	n := h.CommString()
	if len(s.comms) < 4096 {
		s.comms[*c] = n
	}
	return n
}

// Stats returns the counters of every interface. A hook's kernel counters
// go to its first interface; a further link-type interface of the same
// hook reports only the packets written to it, and those are taken out of
// the first interface's Captured, so the Captured of a hook's interfaces
// add up to what the hook captured.
func (s *Source) Stats() []pcapng.InterfaceStats {
	s.mu.Lock()
	if s.final != nil {
		defer s.mu.Unlock()
		return append([]pcapng.InterfaceStats(nil), s.final...)
	}
	s.mu.Unlock()
	return s.collect()
}

func (s *Source) collect() []pcapng.InterfaceStats {
	out := make([]pcapng.InterfaceStats, len(s.ifaces))
	s.mu.Lock()
	defer s.mu.Unlock()
	extra := map[int]uint64{} // packets written to a hook's other interfaces
	for key, i := range s.ifIndex {
		if i != s.firstIface(key.hook) {
			out[i].Captured = s.written[i].Load()
			extra[key.hook] += out[i].Captured
		}
	}
	for hook := range s.byHook {
		var k [NumStats]uint64
		k, _ = s.ring.HookStats(hook)
		uf := s.userFiltered[hook]
		st := pcapng.InterfaceStats{
			Seen:         k[StatSeen],
			SeenCounted:  !s.byHook[hook].SeenNotCounted,
			Matched:      k[StatMatched],
			Captured:     k[StatCaptured],
			Lost:         k[StatLost],
			Skipped:      k[StatNoHeader] + k[StatNested] + k[StatError],
			NoHeader:     k[StatNoHeader],
			Shed:         k[StatShed],
			UserFiltered: uf,
		}
		st.Matched -= min(uf, st.Matched)
		st.Captured -= min(uf+extra[hook], st.Captured)
		out[s.firstIface(hook)] = st
	}
	return out
}

func (s *Source) firstIface(hook int) int {
	h := s.byHook[hook]
	lt := h.Interface.LinkType
	if lt == 0 {
		lt = h.Programs[0].Options.LinkType
	}
	if h.CookRaw && lt == pcapng.LinkTypeRaw {
		lt = pcapng.LinkTypeLinuxSLL
	}
	return s.ifIndex[ifKey{hook, lt}]
}

// snapshot keeps the final counters so Stats works after Close.
func (s *Source) snapshot() {
	st := s.collect()
	s.mu.Lock()
	s.final = st
	s.mu.Unlock()
}

// DetachOn makes every later detach (when Run ends, or Close) run
// through run, for example on a thread that kept the privilege to detach
// after the process dropped it (a clsact filter is deleted over rtnetlink,
// which checks the sending thread's CAP_NET_ADMIN). nil runs it in place.
func (s *Source) DetachOn(run func(func() error) error) {
	s.mu.Lock()
	s.detachOn = run
	s.mu.Unlock()
}

// detach closes every hook's links, in reverse order.
func (s *Source) detach() error {
	s.mu.Lock()
	if s.detached {
		s.mu.Unlock()
		return nil
	}
	s.detached = true
	on := s.detachOn
	s.mu.Unlock()
	if on != nil {
		return on(s.closeLinks)
	}
	return s.closeLinks()
}

// closeLinks closes every hook's links, in reverse order, then the links
// the hooks share.
func (s *Source) closeLinks() error {
	var errs []error
	for i := len(s.hooks) - 1; i >= 0; i-- {
		if err := closeAll(s.hooks[i].Links); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", s.hooks[i].Interface.Name, err))
		}
	}
	if err := closeAll(s.links); err != nil {
		errs = append(errs, fmt.Errorf("detach: %w", err))
	}
	return errors.Join(errs...)
}

// Unknown returns the number of records that named a hook or link type
// this source does not have (they are not written).
func (s *Source) Unknown() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unknown
}

// Close detaches every hook, closes the programs and the ring. Counters
// stay readable through Stats.
func (s *Source) Close() error {
	errs := []error{s.detach()}
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if closed {
		return errors.Join(errs...)
	}
	if s.final == nil && s.ring.statsMem != nil {
		s.snapshot()
	}
	for i := range s.hooks {
		for _, p := range s.hooks[i].Programs {
			if p != nil {
				errs = append(errs, p.Close())
			}
		}
	}
	errs = append(errs, s.ring.Close(), closeAll(s.closers))
	return errors.Join(errs...)
}

// sllHeaderLen is the size of a LINKTYPE_LINUX_SLL header.
const sllHeaderLen = 16

// cookRaw appends to dst a Linux cooked capture header for the raw IP
// packet ip (packet type from dir, no link-layer address, protocol from
// the IP version) and then ip.
func cookRaw(dst, ip []byte, dir pcapng.Direction) []byte {
	var pkttype uint16 // PACKET_HOST
	if dir == pcapng.DirectionOutbound {
		pkttype = 4 // PACKET_OUTGOING
	}
	proto := uint16(unix.ETH_P_IP)
	if len(ip) > 0 && ip[0]>>4 == 6 {
		proto = unix.ETH_P_IPV6
	}
	dst = append(dst, byte(pkttype>>8), byte(pkttype),
		0xff, 0xfe, // ARPHRD_NONE: no link-layer header
		0, 0, // address length
		0, 0, 0, 0, 0, 0, 0, 0, // address
		byte(proto>>8), byte(proto))
	return append(dst, ip...)
}
