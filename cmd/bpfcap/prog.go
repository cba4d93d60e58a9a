package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/filter"
	"github.com/bpfcap/bpfcap/pcapng"
	"github.com/bpfcap/bpfcap/progcap"
)

// newProgCmd builds `bpfcap prog (id ID | pinned PATH | name NAME) [FILTER...]`.
func newProgCmd(env *cliEnv) *cobra.Command {
	var o captureOptions
	cmd := &cobra.Command{
		Use:   "prog (id ID | pinned PATH | name NAME) [proto P] [len SNAPLEN] [data_out FILE] [FILTER...]",
		Short: "capture the packets a BPF program emits with bpfcap_output() (bpf/bpfcap.h)",
		Long: `prog captures the packets a BPF program of your own emits: any XDP, tc or
tracing program that includes bpf/bpfcap.h and calls

    bpfcap_output(ctx, data, len, BPFCAP_LINKTYPE_ETHERNET, id);

where it wants a packet recorded (the bpf_pcap() helper proposed in 2019,
without a kernel change). The id is 64 bits of the program's choosing (a
rule id, a drop reason, an skb hash): bpfcap writes it as the packet's
epb_packetid (Wireshark's frame.packet_id; "id 0x..." on -v lines), to
correlate packets with the program's other tracing data.

bpfcap finds the program by id, pinned path (a pinned link works too) or
name, finds the header's maps (the ring bpfcap_events and .data.bpfcap,
which holds the variable bpfcap_config) among the maps the program uses,
turns capture on while it runs, and off when it exits (also on errors; a
capture left on by a killed bpfcap is taken over with a notice). While
nobody captures, bpfcap_output() costs the program a load and a branch.

  bpfcap prog id ID [FILTER]        the program with this id (bpftool prog show)
  bpfcap prog pinned PATH [FILTER]  the program (or link) pinned at PATH
  bpfcap prog name NAME [FILTER]    the one program with this name (the kernel
                                    keeps 15 characters); several: their ids
                                    are listed, pick one with id

Each link type the program emits gets its own pcapng interface; the first
is declared up front (proto P, default eth), the others as their first
packet arrives. The filter runs in userspace (the program is the author's;
bpfcap changes nothing in it), compiled by libpcap for each link type.
Records the ring had no room for are counted as lost (isb_ifdrop) and in
the next packet's epb_dropcount. The ring buffer is the program's own
(BPFCAP_OUTPUT_RING_SIZE in the header): -B, pages and --perf do not apply.
All programs of one object share its capture maps: capturing one captures
what any of them emits (their ids tell them apart).`,
		Example: `  bpfcap prog name progcap_xdp -w rules.pcapng
  bpfcap prog pinned /sys/fs/bpf/my_prog 'udp port 53' | tshark -r - -T fields -e frame.packet_id
  bpfcap prog id 42 proto ip -c 10 'tcp[tcpflags] & tcp-rst != 0'`,
		Args: needArgs("prog needs a program: bpfcap prog id ID, pinned PATH or name NAME (bpftool prog show lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel, rest, err := parseProgSelector(args)
			if err != nil {
				return err
			}
			if err := o.parseKeywords(rest); err != nil {
				return err
			}
			switch {
			case o.Device != "":
				return errors.New("-i/dev: bpfcap prog captures what the program emits, on no particular device; filter in the program, or with a FILTER such as 'ether host ...'")
			case o.Perf || o.BufferSize > 0 || o.Pages > 0:
				return errors.New("--perf, -B and pages: bpfcap prog reads the program's own ring buffer (bpfcap_events); set its size with #define BPFCAP_OUTPUT_RING_SIZE before including bpf/bpfcap.h")
			}
			lt := pcapng.LinkTypeEthernet
			if o.Proto != "" {
				flt, err := filter.ParseProto(o.Proto)
				if err != nil {
					return err
				}
				lt = pcapng.LinkType(flt.FileLinkType())
			}
			open := func(ctx context.Context) (bpfcap.Source, error) {
				return progcap.Open(sel, progcap.Options{
					Filter:   o.Filter,
					Snaplen:  o.Snaplen,
					LinkType: lt,
					Notices:  newNoticeWriter(env.stderr),
					Compile:  env.compiler(ctx),
				})
			}
			return runCapture(cmd.Context(), env, &o, open)
		},
	}
	addCaptureFlags(cmd.Flags(), &o)
	return cmd
}

// parseProgSelector takes `id ID`, `pinned PATH` or `name NAME` from the
// front of args.
func parseProgSelector(args []string) (progcap.Selector, []string, error) {
	var sel progcap.Selector
	if len(args) < 2 {
		switch {
		case len(args) == 1 && (args[0] == "id" || args[0] == "pinned" || args[0] == "name"):
			return sel, nil, fmt.Errorf("prog %s needs a value, e.g. bpfcap prog id 42, bpfcap prog pinned /sys/fs/bpf/my_prog or bpfcap prog name my_prog", args[0])
		}
		return sel, nil, fmt.Errorf("prog %q: say which program: id ID, pinned PATH or name NAME", args[0])
	}
	switch args[0] {
	case "id":
		n, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil || n == 0 {
			return sel, nil, fmt.Errorf("prog id %q: want a program id, a positive number (bpftool prog show lists them)", args[1])
		}
		sel.ID = ebpf.ProgramID(n)
	case "pinned":
		if args[1] == "" {
			return sel, nil, errors.New("prog pinned: want the path of a pinned program, e.g. /sys/fs/bpf/my_prog")
		}
		sel.Pinned = args[1]
	case "name":
		if args[1] == "" {
			return sel, nil, errors.New("prog name: want a program name")
		}
		sel.Name = args[1]
	default:
		return sel, nil, fmt.Errorf("prog %q: say which program: id ID, pinned PATH or name NAME", args[0])
	}
	return sel, args[2:], nil
}
