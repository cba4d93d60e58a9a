package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

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
		Short: "show a tcpdump filter as bpfcap runs it, or check it on a capture file",
		Long: `filter shows and checks the eBPF bpfcap makes from a tcpdump filter.

  bpfcap filter -d [proto P] EXPRESSION
      prints the classic BPF libpcap compiles (as tcpdump -d does) and the
      eBPF translation. P is the link type: ` + strings.Join(filter.ProtoNames(), ", ") + `
      or any libpcap link-type name (null, ppp, ieee802_11_radio, ...;
      default eth).

  bpfcap filter -r IN [-w OUT] EXPRESSION
      decides every packet of IN (pcap or pcapng; the link type is the
      file's) with libpcap's answer, as tcpdump -r does, and checks the
      translated filter in the kernel: it runs it with BPF_PROG_TEST_RUN on
      the first 256 packets and one in 1024 after, and stops at the first
      packet on which the kernel answers otherwise. Writes the matching
      packets unchanged to OUT as pcapng ("-" is stdout): from a pcapng IN,
      every other block too, byte for byte (comments, flags, interface
      names); prints "N matched of M" on stderr. Needs root. Files are read
      and filters compiled as tcpdump -r does (libpcap reads pcap files;
      netmask 0 unless --netmask).`,
		Example: `  bpfcap filter -d 'tcp port 80'
  bpfcap filter -d proto ip 'udp and len > 100'
  bpfcap filter -r testdata/filter-demo.pcap -w /tmp/web.pcapng 'tcp port 80'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFilter(cmd.Context(), env, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.dump, "dump", "d", false, "print the cBPF and eBPF programs")
	f.StringVarP(&o.read, "read", "r", "", "run the filter on the packets of this pcap or pcapng file (- for stdin), checking the kernel translation on a sample")
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
