package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/xdpcap"
)

// newXDPCmd builds `bpfcap xdp PIN [FILTER...]` and `bpfcap xdp dev
// IFNAME [FILTER...]`.
func newXDPCmd(env *cliEnv) *cobra.Command {
	var (
		o         captureOptions
		actions   string
		countSeen bool
		netmask   string
		maxRate   int
	)
	cmd := &cobra.Command{
		Use:   "xdp (PIN | dev IFNAME) [len SNAPLEN] [pages N] [data_out FILE] [FILTER...]",
		Short: "capture inside XDP programs through their xdpcap hook, with the verdict",
		Long: `xdp captures the packets an XDP program instrumented with bpf/xdpcap.h
handles, with the verdict it gave each one (pass, drop, tx, redirect,
aborted): what tcpdump cannot see. The program ends every path with
` + "`return xdpcap_exit(ctx, &hook, action);`" + ` and its loader pins the hook map
(a prog array with one slot per XDP action; Cloudflare xdpcap's layout works
too). bpfcap puts one capture program per action into the hook; each returns
its action, so the program behaves exactly as before. On exit the slots are
emptied; slots left full by a killed bpfcap are emptied by the next run.

  bpfcap xdp PIN [FILTER]        capture from the hook pinned at PIN
  bpfcap xdp dev IFNAME [FILTER] an interface without an XDP program: capture
                                 at XDP entry (bpfcap attaches its own
                                 pass-through program; no verdicts). One with
                                 an XDP program: capture what it returns with
                                 fexit on it where the kernel allows (first
                                 buffer of each packet, with the verdict);
                                 elsewhere bpfcap says how to instrument it

Packets are Ethernet frames; the verdict is in each packet's epb_verdict
(type XDP; Wireshark's frame.verdict.ebpf_xdp). Multi-buffer (frags) programs are captured in full
up to the snap length; the filter sees the first buffer.`,
		Example: `  bpfcap xdp /sys/fs/bpf/xdpcap_hook 'udp port 53' -w dns.pcapng
  bpfcap xdp /sys/fs/bpf/xdpcap_hook --actions drop,aborted | tcpdump -nr -
  bpfcap xdp dev eth0 -c 10 icmp
  bpfcap xdp -i eth0 -c 10 icmp`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				devMode bool
				target  string
				rest    []string
			)
			switch {
			case len(args) > 0 && args[0] == "dev":
				if len(args) < 2 {
					return errors.New("xdp dev needs an interface name, e.g. bpfcap xdp dev eth0")
				}
				devMode, target, rest = true, args[1], args[2:]
			case o.Device != "" && o.Device != "any" && (len(args) == 0 || !strings.Contains(args[0], "/")):
				// -i IF without a pin means dev IF, as in tcpdump.
				devMode, target, rest, o.Device = true, o.Device, args, ""
			case len(args) == 0:
				return errors.New("xdp needs a pinned hook map or a device: bpfcap xdp /sys/fs/bpf/HOOK [FILTER...] or bpfcap xdp dev IFNAME (-i IFNAME) [FILTER...]")
			default:
				target, rest = args[0], args[1:]
				if pin, moved := hostPin(target); moved {
					fmt.Fprintf(env.stderr, "bpfcap: %s is not in this mount namespace (ip netns exec mounts its own /sys); using %s\n", target, pin)
					target = pin
				} else if bpffsHidden(target) {
					return fmt.Errorf("%s: /sys/fs/bpf here is not the bpf filesystem (ip netns exec mounts its own /sys, hiding the pins): run bpfcap with nsenter --net=/run/netns/NAME instead, which keeps the mounts, or from the root namespace with -i IF@NAME", target)
				}
			}
			switch o.tcpdump.Direction {
			case "in", "inout":
				o.tcpdump.directionUsed = true // XDP sees received packets only
			case "out":
				return errors.New("-Q out: XDP sees only the packets a device receives; for sent packets use bpfcap tc -i IF -Q out")
			}
			if devMode && target == "any" {
				return errors.New("xdp dev any: XDP attaches to one device; for the packets of every device use bpfcap trace tp_btf:netif_receive_skb")
			}
			if err := o.parseKeywords(rest); err != nil {
				return err
			}
			if o.Proto != "" && o.Proto != "eth" {
				return fmt.Errorf("proto %s: XDP packets start with the Ethernet header; use proto eth or leave proto out", o.Proto)
			}
			acts, err := xdpcap.ParseActions(actions)
			if err != nil {
				return err
			}
			if err := checkMaxRate(maxRate); err != nil {
				return err
			}
			if devMode && cmd.Flags().Changed("actions") {
				return errors.New("--actions applies to hook captures (bpfcap xdp PIN); at XDP entry there is no verdict yet")
			}
			if actions == "all" {
				acts = nil // every action the hook has a slot for
			}
			dev := o.Device
			if devMode {
				dev = target
			}
			mask, err := liveNetmask(netmask, dev)
			if err != nil {
				return err
			}
			open := func(ctx context.Context) (bpfcap.Source, error) {
				co := env.kernelCapture(ctx, &o, mask, countSeen)
				co.MaxRate = maxRate
				opts := xdpcap.CaptureOptions{
					CaptureOptions: co,
					Actions:        acts,
				}
				if devMode {
					if o.Device != "" {
						return nil, errors.New("xdp dev IFNAME captures one interface already: leave out -i/dev")
					}
					return xdpcap.OpenDeviceCapture(target, opts)
				}
				if o.Device != "" {
					ifc, err := hook.LookupDevice(o.Device)
					if err != nil {
						return nil, err
					}
					opts.Ifindex = ifc.Attrs().Index
				}
				return xdpcap.OpenCapture(target, opts)
			}
			return runCapture(cmd.Context(), env, &o, open)
		},
	}
	addCaptureFlags(cmd.Flags(), &o)
	cmd.Flags().StringVar(&actions, "actions", "all", "XDP `actions` to capture: comma-separated aborted,drop,pass,tx,redirect or all")
	addNetmaskFlag(cmd.Flags(), &netmask)
	cmd.Flags().BoolVar(&countSeen, "count-seen", false, "count every packet the hook sees (the 'seen' statistic; one map update per packet)")
	addMaxRateFlag(cmd.Flags(), &maxRate)
	return cmd
}
