package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/spf13/cobra"
	"golang.org/x/net/bpf"

	"github.com/bpfcap/bpfcap/filter"
)

// filterOptions are the flags of `bpfcap filter`.
type filterOptions struct {
	dump    bool
	read    string
	write   string
	snaplen int
	backend string
}

func newFilterCmd(env *cliEnv) *cobra.Command {
	var o filterOptions
	cmd := &cobra.Command{
		Use:   "filter (-d | -r FILE [-w FILE]) [proto P] EXPRESSION",
		Short: "show a tcpdump filter as bpfcap runs it, or run it in the kernel on a capture file",
		Long: `filter shows and checks the eBPF bpfcap makes from a tcpdump filter.

  bpfcap filter -d [proto P] EXPRESSION
      prints the classic BPF libpcap compiles (as tcpdump -d does) and the
      eBPF translation. P is the link type: ` + strings.Join(filter.ProtoNames(), ", ") + ` (default eth).

  bpfcap filter -r IN [-w OUT] EXPRESSION
      loads the translated filter into the kernel once and runs it with
      BPF_PROG_TEST_RUN on every packet of IN (pcap or pcapng; the link type
      is the file's), writes the matching packets unchanged to OUT as pcapng
      ("-" is stdout) and prints "N matched of M" on stderr. Needs root.`,
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

func runFilter(ctx context.Context, env *cliEnv, o filterOptions, args []string) error {
	lt, explicit, expr, err := parseFilterArgs(args)
	if err != nil {
		return err
	}
	be, err := parseBackend(o.backend)
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
		return dumpFilter(env.stdout, expr, lt, o.snaplen, be)
	case o.read != "":
		var want *filter.LinkType
		if explicit {
			want = &lt
		}
		return runFilterFile(ctx, env, o, expr, want)
	}
	return errors.New("filter: give -d to print the programs or -r FILE to run the filter on a capture file")
}

// dumpFilter prints the cBPF and the eBPF translation of expr.
func dumpFilter(w io.Writer, expr string, lt filter.LinkType, snaplen int, be filter.Backend) error {
	prog, err := filter.Compile(expr, lt, snaplen)
	if err != nil {
		return err
	}
	listing, err := filter.Dump(prog)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "; cBPF from libpcap, proto %s (%d instructions)\n%s", lt, len(prog), listing)
	insns, err := filter.Translate(prog, filter.Options{Backend: be, ScratchSize: filter.TestScratchSize})
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

// packetReader is what pcapgo's pcap and pcapng readers share.
type packetReader interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// openCapture opens a pcap or pcapng stream and returns a reader and the
// link type of each interface (pcap files have one).
// Pcapng files may mix link types (one per interface); interfaces become
// known as the reader reaches them.
//
// A pcapng file may hold several sections, each with its own interfaces
// (numbered from 0 again): newSection is called when a section after the
// first starts, before its first packet.
func openCapture(r io.Reader, newSection func()) (packetReader, func(int) (layers.LinkType, uint32, error), error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, nil, fmt.Errorf("read capture file header: %w", err)
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		opts := pcapgo.DefaultNgReaderOptions
		opts.WantMixedLinkType = true
		opts.SectionEndCallback = func([]pcapgo.NgInterface, pcapgo.NgSectionInfo) { newSection() }
		ng, err := pcapgo.NewNgReader(br, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("read pcapng: %w", err)
		}
		return ng, func(i int) (layers.LinkType, uint32, error) {
			intf, err := ng.Interface(i)
			if err != nil {
				return 0, 0, fmt.Errorf("pcapng interface %d: %w", i, err)
			}
			return intf.LinkType, intf.SnapLength, nil
		}, nil
	}
	// The header's link type field is 32 bits: the low 26 are the link
	// type (libpcap's LT_LINKTYPE), the top ones FCS information. pcapgo
	// keeps 16 bits, which would read 65537 as Ethernet.
	if hdr, err := br.Peek(24); err == nil {
		var bo binary.ByteOrder = binary.LittleEndian
		if m := binary.BigEndian.Uint32(hdr); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
			bo = binary.BigEndian
		}
		if lt := bo.Uint32(hdr[20:]) & 0x03ffffff; lt > 0xffff {
			return nil, nil, fmt.Errorf("link type %d: no link type is above 65535 (a damaged header?): %w", lt, errUnknownLinkType)
		}
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	return pr, func(int) (layers.LinkType, uint32, error) { return pr.LinkType(), pr.Snaplen(), nil }, nil
}

// errUnknownLinkType is wrapped when a capture file names a link type
// that cannot be one.
var errUnknownLinkType = errors.New("unknown link type")

// fileFilter is the filter loaded for one link type of the input.
type fileFilter struct {
	lt      filter.LinkType
	prog    []bpf.Instruction
	direct  *filter.KernelFilter
	scratch *filter.KernelFilter // loaded for packets too long for direct
	outID   int                  // output interface, -1 until written
}

func runFilterFile(ctx context.Context, env *cliEnv, o filterOptions, expr string, want *filter.LinkType) (err error) {
	in := env.stdin
	if o.read != "-" {
		f, err := os.Open(o.read)
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		defer f.Close()
		in = f
	}
	sectionStarted := false
	pr, linkOf, err := openCapture(in, func() { sectionStarted = true })
	if err != nil {
		return fmt.Errorf("filter: %s: %w", o.read, err)
	}
	_, isNg := pr.(*pcapgo.NgReader)

	tb, err := filter.NewTestBed()
	if err != nil {
		return fmt.Errorf("filter: %w (running filters in the kernel needs root or CAP_BPF+CAP_NET_ADMIN)", err)
	}
	defer tb.Close()
	filters := map[int]*fileFilter{}
	closeFilters := func() {
		for i, ff := range filters {
			ff.direct.Close()
			if ff.scratch != nil {
				ff.scratch.Close()
			}
			delete(filters, i)
		}
	}
	defer closeFilters()
	// filterFor compiles and loads the filter for input interface i.
	filterFor := func(i int) (*fileFilter, error) {
		if ff, ok := filters[i]; ok {
			return ff, nil
		}
		fileLT, snap, err := linkOf(i)
		if err != nil {
			return nil, err
		}
		lt, err := filter.LinkTypeFromFile(uint32(fileLT))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.read, err)
		}
		if want != nil && *want != lt {
			return nil, fmt.Errorf("%s has link type %s, not proto %s: leave proto out with -r", o.read, lt, *want)
		}
		if snap == 0 || snap > 262144 {
			snap = 262144
		}
		prog, err := filter.Compile(expr, lt, int(snap))
		if err != nil {
			return nil, err
		}
		kf, err := tb.Load(prog, filter.Direct)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", expr, err)
		}
		ff := &fileFilter{lt: lt, prog: prog, direct: kf, outID: -1}
		filters[i] = ff
		return ff, nil
	}

	var out *pcapgo.NgWriter
	var outFile *os.File
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
	// ensureOut creates the output, and its interface for ff, on first use.
	ensureOut := func(ff *fileFilter) error {
		intf := pcapgo.NgInterface{
			Name:                o.read,
			Filter:              expr,
			LinkType:            layers.LinkType(ff.lt.FileLinkType()),
			TimestampResolution: 9,
			OS:                  "Linux",
		}
		if out == nil {
			var w io.Writer = env.stdout
			if o.write != "-" {
				f, err := os.Create(o.write)
				if err != nil {
					return err
				}
				outFile, w = f, f
			}
			nw, err := pcapgo.NewNgWriterInterface(w, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "bpfcap filter"}})
			if err != nil {
				return err
			}
			out, ff.outID = nw, 0
		} else if ff.outID < 0 {
			id, err := out.AddInterface(intf)
			if err != nil {
				return err
			}
			ff.outID = id
		}
		return nil
	}
	writePacket := func(ff *fileFilter, ci gopacket.CaptureInfo, data []byte) error {
		if err := ensureOut(ff); err != nil {
			return err
		}
		ci.InterfaceIndex = ff.outID
		return out.WritePacket(ci, data)
	}

	// A pcap file's link type is known now: compile and load the filter
	// before reading. (A pcapng's interfaces come with its packets; the
	// filter is compiled at the first one, still before any output.) A
	// bad expression leaves no output behind.
	if _, _, err := linkOf(0); err == nil {
		if _, err := filterFor(0); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
	}

	matched, total, truncated := 0, 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, ci, rerr := pr.ReadPacketData()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("filter: read %s after %d packets: %w", o.read, total, rerr)
		}
		total++
		if sectionStarted {
			// A new section's interface 0 is another interface: its
			// filter is compiled for its own link type and snap length.
			sectionStarted = false
			closeFilters()
		}
		ff, err := filterFor(ci.InterfaceIndex)
		if err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		if isNg {
			// libpcap refuses such a packet: the file is damaged.
			if _, snap, err := linkOf(ci.InterfaceIndex); err == nil && snap != 0 && ci.CaptureLength > int(snap) {
				return fmt.Errorf("filter: %s: packet %d: captured length %d is more than its interface's snap length %d (a damaged file; libpcap refuses it too)", o.read, total, ci.CaptureLength, snap)
			}
		}
		kf := ff.direct
		if len(data) > filter.MaxDirectTestPacket {
			if ff.scratch == nil {
				if ff.scratch, err = tb.Load(ff.prog, filter.Scratch); err != nil {
					return fmt.Errorf("filter %q: %w", expr, err)
				}
			}
			kf = ff.scratch
			if len(data) > filter.TestScratchSize {
				truncated++
			}
		}
		ret, err := kf.Run(data, max(ci.Length, len(data)))
		if err != nil {
			return fmt.Errorf("filter: packet %d: %w", total, err)
		}
		if ret == 0 {
			continue
		}
		matched++
		if o.write != "" {
			if err := writePacket(ff, ci, data); err != nil {
				return fmt.Errorf("filter: write %s: %w", o.write, err)
			}
		}
	}
	if o.write != "" && out == nil {
		// No packet matched: still write a valid, empty pcapng.
		ff, err := filterFor(0)
		if err != nil {
			return fmt.Errorf("filter: %s has no interface to write an empty capture for: %w", o.read, err)
		}
		if err := ensureOut(ff); err != nil {
			return fmt.Errorf("filter: write %s: %w", o.write, err)
		}
	}
	if truncated > 0 {
		fmt.Fprintf(env.stderr, "note: %d packets longer than %d bytes were filtered on their first %d bytes\n", truncated, filter.TestScratchSize, filter.TestScratchSize)
	}
	fmt.Fprintf(env.stderr, "%d matched of %d\n", matched, total)
	return nil
}
