package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

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
		if p.Hook == "" && !s.plain { // name the hook as the pcapng comment does
			q := *p
			q.Hook = s.ifaces[p.Interface].Name
			p = &q
		}
	}
	s.n++
	if s.n == 1 {
		s.first, s.prev = p.Timestamp, p.Timestamp
	}
	line := summaryLineOpts(p, lt, s.loc, s.opts, s.timeText(p.Timestamp))
	s.prev = p.Timestamp
	if s.opts.Number {
		line = fmt.Sprintf("%5d  ", s.n) + line
	}
	_, err := fmt.Fprintln(s.w, line)
	return err
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
//	TIME HOOK [DIR] [DEV]: DECODE (WIRE bytes) [VERDICT] [REASON] [pid N comm C] [id 0xID]
//
// where DECODE is tcpdump's view of the headers (IP, IP6, ARP, TCP, UDP,
// ICMP) as far as the captured bytes go.
func summaryLine(p *pcapng.Packet, lt pcapng.LinkType, loc *time.Location) string {
	return summaryLineOpts(p, lt, loc, lineOptions{}, p.Timestamp.In(loc).Format("15:04:05.000000000"))
}

// summaryLineOpts is summaryLine with tcpdump's display flags and the
// time stamp already formatted ("" for none).
func summaryLineOpts(p *pcapng.Packet, lt pcapng.LinkType, loc *time.Location, opts lineOptions, ts string) string {
	var b strings.Builder
	if ts != "" {
		b.WriteString(ts)
		b.WriteByte(' ')
	}
	if p.Hook != "" {
		b.WriteString(p.Hook)
		if d := p.Direction.String(); d != "" {
			b.WriteString(" " + d)
		}
		if p.Device != "" {
			b.WriteString(" " + p.Device)
		}
		b.WriteString(": ")
	}
	if opts.LinkHeader {
		b.WriteString(linkHeaderText(p.Data, lt, p.WireLen))
	}
	b.WriteString(decodeSummary(p.Data, lt))
	b.WriteString(" (" + strconv.Itoa(p.WireLen) + " bytes)")
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
	return b.String()
}

// decodeSummary describes the headers in data, tcpdump style.
func decodeSummary(data []byte, lt pcapng.LinkType) string {
	pkt := gopacket.NewPacket(data, layers.LinkType(lt), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var (
		src, dst string
		ipDesc   string
	)
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.ARP:
			return arpSummary(l)
		case *layers.IPv4:
			ipDesc, src, dst = "IP", l.SrcIP.String(), l.DstIP.String()
		case *layers.IPv6:
			ipDesc, src, dst = "IP6", l.SrcIP.String(), l.DstIP.String()
		case *layers.TCP:
			return fmt.Sprintf("%s %s.%d > %s.%d: Flags [%s], seq %d, win %d, length %d", ipDesc, src, l.SrcPort, dst, l.DstPort, tcpFlags(l), l.Seq, l.Window, len(l.Payload))
		case *layers.UDP:
			return fmt.Sprintf("%s %s.%d > %s.%d: UDP, length %d", ipDesc, src, l.SrcPort, dst, l.DstPort, len(l.Payload))
		case *layers.ICMPv4:
			return fmt.Sprintf("%s %s > %s: ICMP %s", ipDesc, src, dst, icmp4Summary(l))
		case *layers.ICMPv6:
			return fmt.Sprintf("%s %s > %s: ICMP6 %s", ipDesc, src, dst, l.TypeCode.String())
		}
	}
	if ipDesc != "" {
		return ipDesc + " " + src + " > " + dst
	}
	if eth, ok := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); ok {
		s := fmt.Sprintf("%s > %s, ethertype %#04x", eth.SrcMAC, eth.DstMAC, uint16(eth.EthernetType))
		if pkt.ErrorLayer() != nil {
			s += ", truncated"
		}
		return s
	}
	if el := pkt.ErrorLayer(); el != nil {
		return "undecodable " + lt.String() + " packet"
	}
	return lt.String() + " packet"
}

func tcpFlags(t *layers.TCP) string {
	var f []byte
	for _, x := range []struct {
		on bool
		c  byte
	}{{t.FIN, 'F'}, {t.SYN, 'S'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.URG, 'U'}, {t.ECE, 'E'}, {t.CWR, 'W'}} {
		if x.on {
			f = append(f, x.c)
		}
	}
	if t.ACK {
		f = append(f, '.')
	}
	if len(f) == 0 {
		return "none"
	}
	return string(f)
}

func icmp4Summary(l *layers.ICMPv4) string {
	switch l.TypeCode.Type() {
	case layers.ICMPv4TypeEchoRequest:
		return fmt.Sprintf("echo request, id %d, seq %d", l.Id, l.Seq)
	case layers.ICMPv4TypeEchoReply:
		return fmt.Sprintf("echo reply, id %d, seq %d", l.Id, l.Seq)
	}
	return l.TypeCode.String()
}

func arpSummary(a *layers.ARP) string {
	spa, tpa := net.IP(a.SourceProtAddress), net.IP(a.DstProtAddress)
	switch a.Operation {
	case layers.ARPRequest:
		return fmt.Sprintf("ARP, Request who-has %s tell %s", tpa, spa)
	case layers.ARPReply:
		return fmt.Sprintf("ARP, Reply %s is-at %s", spa, net.HardwareAddr(a.SourceHwAddress))
	}
	return fmt.Sprintf("ARP, operation %d", a.Operation)
}

// linkHeaderText is tcpdump -e's link-level part of a line:
// "SRC > DST, ethertype IPv4 (0x0800), length N: " for Ethernet.
func linkHeaderText(data []byte, lt pcapng.LinkType, wire int) string {
	if lt != pcapng.LinkTypeEthernet || len(data) < 14 {
		return ""
	}
	et := uint16(data[12])<<8 | uint16(data[13])
	return fmt.Sprintf("%s > %s, ethertype %s (0x%04x), length %d: ",
		net.HardwareAddr(data[6:12]), net.HardwareAddr(data[0:6]), etherTypeName(et), et, wire)
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
