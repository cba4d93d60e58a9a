package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/filter"
)

// filterOptions are the flags of `bpfcap filter`.
type filterOptions struct {
	dump    bool
	read    string
	write   string
	snaplen int
	backend string
	netmask string
}

func newFilterCmd(env *cliEnv) *cobra.Command {
	var o filterOptions
	cmd := &cobra.Command{
		Use:   "filter (-d | -r FILE [-w FILE]) [proto P] EXPRESSION",
		Short: "show a tcpdump filter as bpfcap runs it, or run it in the kernel on a capture file",
		Long: `filter shows and checks the eBPF bpfcap makes from a tcpdump filter.

  bpfcap filter -d [proto P] EXPRESSION
      prints the classic BPF libpcap compiles (as tcpdump -d does) and the
      eBPF translation. P is the link type: ` + strings.Join(filter.ProtoNames(), ", ") + `
      or any libpcap link-type name (null, ppp, ieee802_11_radio, ...;
      default eth).

  bpfcap filter -r IN [-w OUT] EXPRESSION
      loads the translated filter into the kernel once and runs it with
      BPF_PROG_TEST_RUN on every packet of IN (pcap or pcapng; the link type
      is the file's), writes the matching packets unchanged to OUT as pcapng
      ("-" is stdout) and prints "N matched of M" on stderr. Needs root.
      Files are read and filters compiled as tcpdump -r does (libpcap reads
      pcap files; netmask 0 unless --netmask); packets no kernel test program
      takes whole (over 32 KiB) and protochain walks longer than the
      translation unrolls are decided in userspace with libpcap's semantics.`,
		Example: `  bpfcap filter -d 'tcp port 80'
  bpfcap filter -d proto ip 'udp and len > 100'
  bpfcap filter -r testdata/filter-demo.pcap -w /tmp/web.pcapng 'tcp port 80'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFilter(cmd.Context(), env, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.dump, "dump", "d", false, "print the cBPF and eBPF programs")
	f.StringVarP(&o.read, "read", "r", "", "run the filter in the kernel on the packets of this pcap or pcapng file (- for stdin)")
	f.StringVarP(&o.write, "write", "w", "", "write the matching packets to this pcapng file (- for stdout)")
	f.IntVarP(&o.snaplen, "snaplen", "s", 262144, "snap length the filter is compiled for (-d)")
	f.StringVar(&o.backend, "backend", "direct", "eBPF packet access to translate for: direct (XDP, tc) or scratch (tracing hooks)")
	f.StringVar(&o.netmask, "netmask", "0.0.0.0", "IPv4 `netmask` for `ip broadcast` (tcpdump -r compiles with 0)")
	return cmd
}

// parseFilterArgs splits `[proto P] EXPRESSION...` into a link type (0 if
// not given) and the expression.
func parseFilterArgs(args []string) (filter.LinkType, bool, string, error) {
	if len(args) >= 1 && args[0] == "proto" {
		if len(args) < 2 {
			return 0, false, "", fmt.Errorf("proto needs a link type: one of %s", strings.Join(filter.ProtoNames(), ", "))
		}
		lt, err := filter.ParseProto(args[1])
		if err != nil {
			return 0, false, "", err
		}
		return lt, true, strings.Join(args[2:], " "), nil
	}
	return filter.LinkEthernet, false, strings.Join(args, " "), nil
}

func parseBackend(name string) (filter.Backend, error) {
	switch name {
	case "direct":
		return filter.Direct, nil
	case "scratch":
		return filter.Scratch, nil
	}
	return 0, fmt.Errorf("unknown --backend %q: use direct or scratch", name)
}

// parseNetmask parses a dotted-quad IPv4 netmask into the host-order
// value filter.CompileNetmask takes.
func parseNetmask(s string) (uint32, error) {
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return 0, fmt.Errorf("--netmask %q: want an IPv4 netmask such as 255.255.255.0", s)
	}
	return binary.BigEndian.Uint32(ip), nil
}

func runFilter(ctx context.Context, env *cliEnv, o filterOptions, args []string) error {
	lt, explicit, expr, err := parseFilterArgs(args)
	if err != nil {
		return err
	}
	be, err := parseBackend(o.backend)
	if err != nil {
		return err
	}
	netmask, err := parseNetmask(o.netmask)
	if err != nil {
		return err
	}
	switch {
	case o.dump && o.read != "":
		return errors.New("filter: -d and -r do not go together: use -d to print the programs, -r to run the filter on a file")
	case o.dump:
		if o.write != "" {
			return errors.New("filter: -w needs -r: -d only prints")
		}
		return dumpFilter(env.stdout, expr, lt, o.snaplen, netmask, be)
	case o.read != "":
		var want *filter.LinkType
		if explicit {
			want = &lt
		}
		return runFilterFile(ctx, env, o, expr, want, netmask)
	}
	return errors.New("filter: give -d to print the programs or -r FILE to run the filter on a capture file")
}

// dumpFilter prints the cBPF and the eBPF translation of expr.
func dumpFilter(w io.Writer, expr string, lt filter.LinkType, snaplen int, netmask uint32, be filter.Backend) error {
	prog, err := filter.CompileNetmask(expr, lt, snaplen, netmask)
	if err != nil {
		return err
	}
	listing, err := filter.Dump(prog)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "; cBPF from libpcap, proto %s (%d instructions)\n%s", lt, len(prog), listing)
	insns, err := filter.Translate(prog, filter.Options{Backend: be, ScratchSize: filter.TestScratchSize})
	if hint := errorHint(err); hint != "" {
		fmt.Fprintf(w, "; eBPF: %v\n; no capture can run this filter: %s\n", err, hint)
		return nil
	}
	if errors.Is(err, filter.ErrUnsupported) {
		fmt.Fprintf(w, "; eBPF: %v\n; captures with this filter filter in userspace instead\n", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("translate filter %q: %w", expr, err)
	}
	fmt.Fprintf(w, "; eBPF, %s back end (%d instructions)\n%v", be, len(insns), insns)
	return nil
}

// capturePacket is one packet read from a capture file, with the link
// type and snap length (libpcap's, adjusted) of its interface.
type capturePacket struct {
	data []byte
	ci   gopacket.CaptureInfo
	captureFormat
}

// captureFormat is what libpcap compiles a filter for a file with.
type captureFormat struct {
	lt      filter.LinkType
	snaplen int
	swapped bool // written in the other byte order than this host's
}

// captureReader reads the packets of a pcap or pcapng file as libpcap
// reads them.
type captureReader interface {
	// next returns the next packet, or io.EOF.
	next() (capturePacket, error)
	// first returns the format of the first interface, if known
	// before any packet (pcap files).
	first() (captureFormat, bool)
	close()
}

// maxSnaplen is libpcap's MAXIMUM_SNAPLEN: files that give no snap length,
// or a larger one, are read with this one.
const maxSnaplen = 262144

// adjustSnaplen is libpcap's pcap_adjust_snapshot for a file's snap length.
func adjustSnaplen(snap uint32) int {
	if snap == 0 || snap > maxSnaplen {
		return maxSnaplen
	}
	return int(snap)
}

// openCapture opens a pcap or pcapng stream. Pcap files, in every variant
// (microsecond, nanosecond, the modified-pcap magic a1b2cd34, versions 2.2
// and 2.3, either byte order), are read by libpcap itself
// (pcap_fopen_offline), so records are what tcpdump -r sees: cut to the
// file's snap length, caplen larger than the wire length kept. Pcapng files
// are read with pcapgo, which also takes sections and interfaces of
// different link types (libpcap 1.10 refuses those), with libpcap's cut of
// each record to its interface's snap length.
func openCapture(name string, r io.Reader) (captureReader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read capture file header: %w", err)
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		opts := pcapgo.DefaultNgReaderOptions
		opts.WantMixedLinkType = true
		shb, err := br.Peek(12)
		if err != nil {
			return nil, fmt.Errorf("read pcapng: %w", err)
		}
		ng, err := pcapgo.NewNgReader(newNgVersionReader(br), opts)
		if err != nil {
			return nil, fmt.Errorf("read pcapng: %w", err)
		}
		// The byte-order magic of the first section.
		return &ngCapture{ng: ng, swapped: binary.NativeEndian.Uint32(shb[8:]) != 0x1a2b3c4d}, nil
	}
	// The header's link type field is 32 bits: the low 26 are the link
	// type (libpcap's LT_LINKTYPE), the top ones FCS information.
	// gopacket's Handle.LinkType keeps 16 bits, which would read 65537
	// as Ethernet; tcpdump refuses such a file ("unknown data link
	// type"), and so do we.
	if hdr, err := br.Peek(24); err == nil {
		var bo binary.ByteOrder = binary.LittleEndian
		switch binary.BigEndian.Uint32(hdr) {
		case 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34:
			bo = binary.BigEndian
		}
		if lt := bo.Uint32(hdr[20:]) & 0x03ffffff; lt > 0xffff {
			return nil, fmt.Errorf("link type %d: no link type is above 65535 (a damaged header?): %w", lt, errUnknownLinkType)
		}
	}
	// libpcap reads from a FILE*: hand it the stream through a pipe,
	// with the bytes already peeked at.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	go func() {
		// Ends at the end of the input, or when close() closes the
		// reading end (EPIPE).
		io.Copy(pw, br)
		pw.Close()
	}()
	h, err := pcap.OpenOfflineFile(pr)
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("not a pcap or pcapng file libpcap reads: %w", err)
	}
	var swapped bool
	switch binary.NativeEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34: // microseconds, nanoseconds, modified pcap
	default:
		swapped = true
	}
	return &pcapCapture{h: h, pipe: pr, format: captureFormat{
		// pcap_datalink already maps the file's LINKTYPE_ to a DLT_.
		lt:      filter.LinkType(h.LinkType()),
		snaplen: adjustSnaplen(uint32(h.SnapLen())),
		swapped: swapped,
	}}, nil
}

// pcapCapture reads a pcap file with libpcap.
type pcapCapture struct {
	h      *pcap.Handle
	pipe   *os.File
	format captureFormat
}

func (c *pcapCapture) first() (captureFormat, bool) { return c.format, true }

func (c *pcapCapture) next() (capturePacket, error) {
	data, ci, err := c.h.ReadPacketData()
	if errors.Is(err, io.EOF) {
		return capturePacket{}, io.EOF
	}
	if err != nil {
		return capturePacket{}, err
	}
	return capturePacket{data: data, ci: ci, captureFormat: c.format}, nil
}

func (c *pcapCapture) close() {
	c.h.Close()
	c.pipe.Close()
}

// errUnknownLinkType is wrapped when a capture file names a link type
// that cannot be one.
var errUnknownLinkType = errors.New("unknown link type")

// ngCapture reads a pcapng file with pcapgo.
type ngCapture struct {
	ng      *pcapgo.NgReader
	swapped bool
}

func (c *ngCapture) first() (captureFormat, bool) { return captureFormat{}, false }

func (c *ngCapture) next() (capturePacket, error) {
	data, ci, err := c.ng.ReadPacketData()
	if err != nil {
		return capturePacket{}, err
	}
	intf, err := c.ng.Interface(ci.InterfaceIndex)
	if err != nil {
		return capturePacket{}, fmt.Errorf("pcapng interface %d: %w", ci.InterfaceIndex, err)
	}
	if intf.SnapLength != 0 && len(data) > int(intf.SnapLength) {
		// libpcap refuses such a record: the file is damaged.
		return capturePacket{}, fmt.Errorf("captured length %d is more than its interface's snap length %d (a damaged file; libpcap refuses it too)", len(data), intf.SnapLength)
	}
	snap := adjustSnaplen(intf.SnapLength)
	if len(data) > snap {
		// Interfaces without a snap length (or a larger one than
		// libpcap's largest): libpcap cuts the record to its own.
		data = data[:snap]
		ci.CaptureLength = snap
	}
	return capturePacket{data: data, ci: ci, captureFormat: captureFormat{
		lt: filter.LinkTypeFromFile(uint32(intf.LinkType)), snaplen: snap, swapped: c.swapped,
	}}, nil
}

func (c *ngCapture) close() {}

// fileFilter is the filter loaded for one link type of the input.
type fileFilter struct {
	lt     filter.LinkType
	runner *filter.Runner
}

func runFilterFile(ctx context.Context, env *cliEnv, o filterOptions, expr string, want *filter.LinkType, netmask uint32) (err error) {
	in := env.stdin
	if o.read != "-" {
		f, err := os.Open(o.read)
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		defer f.Close()
		in = f
	}
	cr, err := openCapture(o.read, in)
	if err != nil {
		return fmt.Errorf("filter: %s: %w", o.read, err)
	}
	defer cr.close()

	tb, err := filter.NewTestBed()
	if err != nil {
		return fmt.Errorf("filter: %w (running filters in the kernel needs root or CAP_BPF+CAP_NET_ADMIN)", err)
	}
	defer tb.Close()
	filters := map[captureFormat]*fileFilter{}
	defer func() {
		for _, ff := range filters {
			ff.runner.Close()
		}
	}()
	// filterFor compiles and loads the filter for a format, as tcpdump
	// -r compiles it for the file.
	filterFor := func(key captureFormat) (*fileFilter, error) {
		if ff, ok := filters[key]; ok {
			return ff, nil
		}
		lt := key.lt
		if want != nil && *want != lt {
			return nil, fmt.Errorf("%s has link type %s, not proto %s: leave proto out with -r", o.read, lt, *want)
		}
		prog, err := filter.CompileFile(expr, lt, key.snaplen, key.swapped, netmask)
		if err != nil {
			return nil, err
		}
		r, err := tb.NewRunner(prog)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", expr, err)
		}
		ff := &fileFilter{lt: lt, runner: r}
		filters[key] = ff
		return ff, nil
	}

	var out *pcapgo.NgWriter
	var outFile *os.File
	outIDs := map[filter.LinkType]int{}
	closeOut := func() error {
		if out == nil {
			return nil
		}
		ferr := out.Flush()
		if outFile != nil {
			if cerr := outFile.Close(); ferr == nil {
				ferr = cerr
			}
		}
		out = nil
		return ferr
	}
	defer func() {
		if cerr := closeOut(); err == nil && cerr != nil {
			err = fmt.Errorf("filter: write %s: %w", o.write, cerr)
		}
	}()
	// ensureOut creates the output, and its interface for lt, on first
	// use: one output interface per link type.
	ensureOut := func(lt filter.LinkType) (int, error) {
		if id, ok := outIDs[lt]; ok {
			return id, nil
		}
		intf := pcapgo.NgInterface{
			Name:                o.read,
			Filter:              expr,
			LinkType:            layers.LinkType(lt.FileLinkType()),
			TimestampResolution: 9,
			OS:                  "Linux",
		}
		id := 0
		if out == nil {
			var w io.Writer = env.stdout
			if o.write != "-" {
				f, err := os.Create(o.write)
				if err != nil {
					return 0, err
				}
				outFile, w = f, f
			}
			nw, err := pcapgo.NewNgWriterInterface(w, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "bpfcap filter"}})
			if err != nil {
				return 0, err
			}
			out = nw
		} else {
			var err error
			if id, err = out.AddInterface(intf); err != nil {
				return 0, err
			}
		}
		outIDs[lt] = id
		return id, nil
	}
	writePacket := func(lt filter.LinkType, ci gopacket.CaptureInfo, data []byte) error {
		id, err := ensureOut(lt)
		if err != nil {
			return err
		}
		ci.InterfaceIndex = id
		// pcapng (and pcapgo) want the original length at least the
		// captured one; files that say less still filter with theirs.
		ci.Length = max(ci.Length, ci.CaptureLength)
		return out.WritePacket(ci, data)
	}

	// A pcap file's link type is known now: compile and load the filter
	// before reading. (A pcapng's interfaces come with its packets; the
	// filter is compiled at the first one, still before any output.) A
	// bad expression leaves no output behind.
	firstFormat, known := cr.first()
	if known {
		if _, err := filterFor(firstFormat); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}

	matched, total := 0, 0
	var paths [filter.PathUndecided + 1]int
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, rerr := cr.next()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("filter: read %s after %d packets: %w", o.read, total, rerr)
		}
		total++
		if !known {
			firstFormat, known = p.captureFormat, true
		}
		ff, err := filterFor(p.captureFormat)
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		ret, path, err := ff.runner.Run(p.data, p.ci.Length)
		if err != nil {
			return fmt.Errorf("filter: packet %d: %w", total, err)
		}
		paths[path]++
		if ret == 0 {
			continue
		}
		matched++
		if o.write != "" {
			if err := writePacket(ff.lt, p.ci, p.data); err != nil {
				return fmt.Errorf("filter: write %s: %w", o.write, err)
			}
		}
	}
	if o.write != "" && out == nil {
		// No packet matched: still write a valid, empty pcapng.
		if !known {
			return fmt.Errorf("filter: %s has no interface to write an empty capture for", o.read)
		}
		if _, err := ensureOut(firstFormat.lt); err != nil {
			return fmt.Errorf("filter: write %s: %w", o.write, err)
		}
	}
	if n := paths[filter.PathLong]; n > 0 {
		fmt.Fprintf(env.stderr, "note: %d packets longer than %d bytes were filtered in userspace (libpcap semantics): no kernel test program takes them whole\n", n, filter.TestScratchSize)
	}
	if n := paths[filter.PathUndecided]; n > 0 {
		fmt.Fprintf(env.stderr, "note: %d packets needed more than %d protochain steps, more than the kernel filter unrolls: filtered in userspace (libpcap semantics)\n", n, filter.MaxBackwardJumps)
	}
	fmt.Fprintf(env.stderr, "%d matched of %d\n", matched, total)
	return nil
}
