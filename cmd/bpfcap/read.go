package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/pcapng"
)

// readOptions are the flags of `bpfcap read` and of `bpfcap -r`.
type readOptions struct {
	Count uint64
	lines lineOptions
}

// newReadCmd builds `bpfcap read FILE [FILTER...]`.
func newReadCmd(env *cliEnv) *cobra.Command {
	var (
		ro      readOptions
		td      tcpdumpOptions
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "read FILE [FILTER...]",
		Short: "print a capture file's packets, one line each, with bpfcap's metadata",
		Long: `read prints the packets of a pcapng or pcap file, one line each, as bpfcap
prints a capture on a terminal: for files bpfcap wrote, with the hook,
verdict, drop reason, device, process and netns of each packet; for other
files, tcpdump-like lines. FILE "-" is stdin. A filter expression prints
only the packets it matches (libpcap's semantics, run in userspace).
` + "`bpfcap -r FILE`" + ` is the same.`,
		Example: `  bpfcap read drops.pcapng
  bpfcap trace tp_btf:kfree_skb -w - | bpfcap read - udp
  bpfcap -r drops.pcapng -c 10 -e`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := td.check(); err != nil {
				return err
			}
			ro.lines = td.lineOptions()
			ro.lines.Verbose = verbose
			return runRead(env, args[0], strings.Join(args[1:], " "), ro)
		},
	}
	cmd.Flags().Uint64VarP(&ro.Count, "count", "c", 0, "stop after this many packets")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "more detail, as tcpdump -v: IP header fields, checksums, the packet an ICMP error quotes")
	addTcpdumpFlags(cmd.Flags(), &td)
	return cmd
}

// pcapngMagic starts every pcapng file (the Section Header Block type).
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// runRead prints the packets of path ("-": stdin) that match expr.
func runRead(env *cliEnv, path, expr string, ro readOptions) error {
	var in io.Reader = env.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReaderSize(in, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("read %s: not a capture file: %w", path, err)
	}
	out := newSummaryPrinter(env.stdout, time.Local)
	out.opts = ro.lines
	m := &readMatcher{expr: expr, byLink: map[pcapng.LinkType]*filter.Matcher{}}
	var n uint64
	emit := func(p *pcapng.Packet, lt pcapng.LinkType, snap uint32) error {
		ok, err := m.match(p, lt, snap)
		if err != nil || !ok {
			return err
		}
		n++
		return out.WritePacket(p)
	}
	done := func() bool { return ro.Count > 0 && n >= ro.Count }
	if string(magic) == string(pcapngMagic) {
		err = readPcapngLines(br, out, emit, done)
	} else {
		err = readPcapLines(br, out, emit, done)
	}
	if ferr := out.Flush(); ferr != nil && err == nil && !isClosedPipe(ferr) {
		err = fmt.Errorf("read: write: %w", ferr)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// readPcapngLines feeds a pcapng file's packets to emit. Files bpfcap wrote
// keep their metadata (hook, reason, device, process, netns); in others
// the interface name is the hook.
func readPcapngLines(r io.Reader, out *summaryPrinter, emit func(*pcapng.Packet, pcapng.LinkType, uint32) error, done func() bool) error {
	rd, err := pcapng.NewReader(r)
	if err != nil {
		return err
	}
	ours := strings.HasPrefix(rd.Application(), "bpfcap")
	for !done() {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ifaces := rd.Interfaces()
		for len(out.ifaces) < len(ifaces) {
			out.AddInterface(ifaces[len(out.ifaces)])
		}
		if p.Interface < 0 || p.Interface >= len(ifaces) {
			return fmt.Errorf("packet of interface %d, which the file does not describe", p.Interface)
		}
		ifc := ifaces[p.Interface]
		if ours {
			p.Comment = pcapng.ParseComment(p.Comment, p)
		} else {
			out.plain = true
		}
		if err := emit(p, ifc.LinkType, ifc.SnapLen); err != nil {
			return err
		}
	}
	return nil
}

// readPcapLines feeds a classic pcap file's packets to emit.
func readPcapLines(r io.Reader, out *summaryPrinter, emit func(*pcapng.Packet, pcapng.LinkType, uint32) error, done func() bool) error {
	rd, err := pcapgo.NewReader(r)
	if err != nil {
		return err
	}
	lt := pcapng.LinkType(rd.LinkType())
	if lt == 12 { // Linux DLT_RAW, as some writers store it
		lt = pcapng.LinkTypeRaw
	}
	out.AddInterface(pcapng.Interface{LinkType: lt, SnapLen: rd.Snaplen()})
	out.plain = true
	for !done() {
		data, ci, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := &pcapng.Packet{Timestamp: ci.Timestamp, Data: data, WireLen: ci.Length, VerdictType: pcapng.VerdictNone}
		if err := emit(p, lt, rd.Snaplen()); err != nil {
			return err
		}
	}
	return nil
}

// readMatcher runs the read filter, compiled once per link type.
type readMatcher struct {
	expr   string
	byLink map[pcapng.LinkType]*filter.Matcher
}

func (m *readMatcher) match(p *pcapng.Packet, lt pcapng.LinkType, snap uint32) (bool, error) {
	if m.expr == "" {
		return true, nil
	}
	fm, ok := m.byLink[lt]
	if !ok {
		flt := filter.LinkTypeFromFile(uint32(lt))
		if snap == 0 {
			snap = 262144
		}
		prog, err := filter.Compile(m.expr, flt, int(snap))
		if err != nil {
			return false, err
		}
		if fm, err = filter.NewMatcher(prog); err != nil {
			return false, err
		}
		m.byLink[lt] = fm
	}
	return fm.Match(p.Data, p.WireLen), nil
}
