package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bpfcap/bpfcap/pcapng"
)

// summaryPrinter is the terminal sink: one readable line per packet,
// flushed per batch.
type summaryPrinter struct {
	w      *bufio.Writer
	loc    *time.Location
	ifaces []pcapng.Interface
	opts   lineOptions
	// n counts the packets printed; first and prev are the time stamps
	// of the first and the previous one (-#, -ttt, -ttttt).
	n           uint64
	first, prev time.Time
	dec         lineDecoder
	// plain prints no capture point (files bpfcap did not write).
	plain bool
}

// lineOptions are tcpdump's display flags of the line printer.
type lineOptions struct {
	// LinkHeader is -e: the link-level header before the decode.
	LinkHeader bool
	// Number is -#: the packet's number first.
	Number bool
	// Time is the count of -t (see tcpdumpOptions.Time).
	Time int
	// Dump is -x, -X, -A: the packet's data after its line.
	Dump dumpOptions
	// Verbose is -v: tcpdump -v's detail (IP header, checksums).
	Verbose bool
	// Absolute is -S, NoChecksums -K.
	Absolute, NoChecksums bool
}

func newSummaryPrinter(w io.Writer, loc *time.Location) *summaryPrinter {
	return &summaryPrinter{w: bufio.NewWriter(w), loc: loc}
}

func (s *summaryPrinter) AddInterface(ifc pcapng.Interface) (int, error) {
	s.ifaces = append(s.ifaces, ifc)
	return len(s.ifaces) - 1, nil
}

func (s *summaryPrinter) WritePacket(p *pcapng.Packet) error {
	var lt pcapng.LinkType
	if p.Interface >= 0 && p.Interface < len(s.ifaces) {
		lt = s.ifaces[p.Interface].LinkType
		if p.Hook == "" && !s.plain { // the hook is the interface's name
			q := *p
			q.Hook = s.ifaces[p.Interface].Name
			p = &q
		}
	}
	if p.Flags&pcapng.HasPacketID != 0 && !s.showPacketID() {
		q := *p
		q.Flags &^= pcapng.HasPacketID
		p = &q
	}
	s.n++
	if s.n == 1 {
		s.first, s.prev = p.Timestamp, p.Timestamp
	}
	s.dec.LinkHeader, s.dec.Verbose = s.opts.LinkHeader, s.opts.Verbose
	s.dec.Absolute, s.dec.NoChecksums = s.opts.Absolute, s.opts.NoChecksums
	line := summaryLineOpts(p, lt, &s.dec, s.timeText(p.Timestamp))
	s.prev = p.Timestamp
	if s.opts.Number {
		line = fmt.Sprintf("%5d  ", s.n) + line
	}
	if s.opts.Dump != (dumpOptions{}) {
		var b strings.Builder
		b.WriteString(line)
		s.opts.Dump.dump(&b, p.Data, lt)
		line = b.String()
	}
	_, err := fmt.Fprintln(s.w, line)
	return err
}

// showPacketID reports whether lines carry the packet id: it is what ties
// the lines of one packet seen at several hooks together, so it is shown
// when the capture has more than one hook, and with -v; with one hook
// every line is a different packet and the id (a kernel address) is noise.
func (s *summaryPrinter) showPacketID() bool {
	if s.opts.Verbose {
		return true
	}
	for _, ifc := range s.ifaces {
		if ifc.Name != s.ifaces[0].Name {
			return true
		}
	}
	return false
}

// timeText formats ts as tcpdump's -t flags do ("" for -t).
func (s *summaryPrinter) timeText(ts time.Time) string {
	switch s.opts.Time {
	case 1:
		return ""
	case 2:
		return fmt.Sprintf("%d.%09d", ts.Unix(), ts.Nanosecond())
	case 3:
		return deltaText(ts.Sub(s.prev))
	case 4:
		return ts.In(s.loc).Format("2006-01-02 15:04:05.000000000")
	case 5:
		return deltaText(ts.Sub(s.first))
	}
	return ts.In(s.loc).Format("15:04:05.000000000")
}

// deltaText formats a delta as tcpdump does (" 00:00:01.000250000").
func deltaText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ns := int64(d)
	return fmt.Sprintf(" %02d:%02d:%02d.%09d", ns/int64(time.Hour), ns/int64(time.Minute)%60, ns/int64(time.Second)%60, ns%int64(time.Second))
}

func (s *summaryPrinter) WriteStats(int, time.Time, time.Time, pcapng.InterfaceStats) error {
	return nil
}

func (s *summaryPrinter) Flush() error { return s.w.Flush() }

// summaryLine formats p as one tcpdump-like line:
//
//	TIME HOOK [DIR] [DEV]: DECODE [VERDICT] [REASON] [pid N comm C] [netns N] [mark M] [id 0xID] [COMMENT]
//
// where DECODE is what tcpdump -n prints for the packet (lineDecoder).
func summaryLine(p *pcapng.Packet, lt pcapng.LinkType, loc *time.Location) string {
	return summaryLineOpts(p, lt, &lineDecoder{}, p.Timestamp.In(loc).Format("15:04:05.000000000"))
}

// summaryLineOpts is summaryLine with a decoder (which keeps TCP state
// and knows -e) and the time stamp already formatted ("" for none).
func summaryLineOpts(p *pcapng.Packet, lt pcapng.LinkType, dec *lineDecoder, ts string) string {
	var b strings.Builder
	if ts != "" {
		b.WriteString(ts)
		b.WriteByte(' ')
	}
	if p.Hook != "" {
		b.WriteString(p.Hook)
		// Say the direction and device once: a tc hook's name has both.
		parts := strings.Split(p.Hook, ":")
		if d := p.Direction.String(); d != "" && !slices.Contains(parts, map[string]string{"in": "ingress", "out": "egress"}[d]) {
			b.WriteString(" " + d)
		}
		if p.Device != "" && !slices.Contains(parts, p.Device) {
			b.WriteString(" " + p.Device)
		}
		b.WriteString(": ")
	}
	b.WriteString(dec.decode(p.Data, lt, p.WireLen))
	if v := pcapng.VerdictName(p.VerdictType, p.Verdict); v != "" {
		b.WriteString(" [" + v + "]")
	}
	if p.DropReason != "" {
		b.WriteString(" [" + p.DropReason + "]")
	}
	if p.Flags&pcapng.HasPID != 0 {
		fmt.Fprintf(&b, " pid %d", p.PID)
		if p.Comm != "" {
			b.WriteString(" comm " + p.Comm)
		}
	}
	if p.Flags&pcapng.HasNetns != 0 {
		fmt.Fprintf(&b, " netns %d", p.Netns)
	}
	if p.Flags&pcapng.HasMark != 0 {
		fmt.Fprintf(&b, " mark %#x", p.Mark)
	}
	if p.Flags&pcapng.HasPacketID != 0 {
		fmt.Fprintf(&b, " id %#x", p.PacketID)
	}
	if p.Comment != "" {
		// What the source adds (parent=, location=, stack=).
		b.WriteString(" " + p.Comment)
	}
	return b.String()
}

// etherTypeName names an EtherType as tcpdump does.
func etherTypeName(et uint16) string {
	switch et {
	case 0x0800:
		return "IPv4"
	case 0x86dd:
		return "IPv6"
	case 0x0806:
		return "ARP"
	case 0x8100:
		return "802.1Q"
	case 0x88a8:
		return "802.1Q-QinQ"
	case 0x8035:
		return "Reverse ARP"
	case 0x88cc:
		return "LLDP"
	case 0x8847:
		return "MPLS unicast"
	}
	return "Unknown"
}
