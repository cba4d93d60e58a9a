package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/tccap"
)

// newTCCmd builds `bpfcap tc dev IFNAME [ingress|egress|both] [FILTER...]`.
func newTCCmd(env *cliEnv) *cobra.Command {
	var (
		o         captureOptions
		mode      string
		countSeen bool
		netmask   string
		meta      metaFlags
		maxRate   int
	)
	cmd := &cobra.Command{
		Use:   "tc dev IFNAME [ingress|egress|both] [len SNAPLEN] [pages N] [data_out FILE] [FILTER...]",
		Short: "capture at tc ingress and egress of an interface",
		Long: `tc captures the packets an interface receives (ingress) and sends (egress)
at the tc layer, with a program that never changes a packet's fate. It
attaches with TCX where the kernel has it (Linux 6.6) and as a cls_bpf
filter on a clsact qdisc otherwise (--tc-mode forces one); on exit it
detaches everything and removes a clsact qdisc it added.

Each direction is its own capture interface ("tc:eth0:ingress"); packets
carry their direction (epb_flags) and paged data up to the snap length.
The filter sees the packet's linear part.`,
		Example: `  bpfcap tc dev eth0 ingress 'tcp port 443' -w in.pcapng
  bpfcap tc -i eth0 -Q in 'tcp port 443' -w in.pcapng
  bpfcap tc dev veth0 both icmp | tcpdump -nr -
  bpfcap tc dev eth0 egress --tc-mode clsact -c 100`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ifname string
			var rest []string
			switch {
			case len(args) >= 2 && args[0] == "dev":
				ifname, rest = args[1], args[2:]
			case o.Device != "":
				// -i IF means dev IF, as in tcpdump.
				ifname, rest, o.Device = o.Device, args, ""
			default:
				return errors.New("tc needs an interface: bpfcap tc dev IFNAME [ingress|egress|both] [FILTER...] (or -i IFNAME)")
			}
			if ifname == "any" {
				return errors.New("tc -i any: tc captures one interface; for the packets of every device use bpfcap trace tp_btf:netif_receive_skb tp_btf:net_dev_start_xmit")
			}
			dirs := []tccap.Direction{tccap.Ingress, tccap.Egress}
			dirGiven := false
			if len(rest) > 0 {
				if d, err := tccap.ParseDirections(rest[0]); err == nil && rest[0] != "" {
					dirs, rest, dirGiven = d, rest[1:], true
				} else if near := nearWord(rest[0], "ingress", "egress", "both"); near != "" {
					return fmt.Errorf("%q: did you mean %s? (the direction is ingress, egress or both)", rest[0], near)
				}
			}
			if q := o.tcpdump.Direction; q != "" {
				if dirGiven {
					return fmt.Errorf("-Q %s: the direction is given twice; keep either -Q or ingress|egress|both", q)
				}
				switch q {
				case "in":
					dirs = []tccap.Direction{tccap.Ingress}
				case "out":
					dirs = []tccap.Direction{tccap.Egress}
				}
				o.tcpdump.directionUsed = true
			}
			m, err := tccap.ParseMode(mode)
			if err != nil {
				return err
			}
			if err := o.parseKeywords(rest); err != nil {
				return err
			}
			if err := checkMaxRate(maxRate); err != nil {
				return err
			}
			if o.Device != "" && o.Device != ifname {
				return fmt.Errorf("dev %s: tc dev %s captures one interface already", o.Device, ifname)
			}
			if o.Proto != "" {
				return fmt.Errorf("proto %s: tc packets start where the interface's frames start (Ethernet on Ethernet devices); leave proto out", o.Proto)
			}
			want, nsPath, err := meta.filter()
			if err != nil {
				return err
			}
			if ifname, nsPath, err = resolveDevice(ifname, nsPath); err != nil {
				return err
			}
			maskDev := ifname
			if nsPath != "" {
				maskDev = "" // libpcap looks in bpfcap's own netns only
			}
			mask, err := liveNetmask(netmask, maskDev)
			if err != nil {
				return err
			}
			open := func(ctx context.Context) (bpfcap.Source, error) {
				co := env.kernelCapture(ctx, &o, mask, countSeen)
				co.Want = want
				co.MaxRate = maxRate
				var c *tccap.Capture
				err := inNetns(nsPath, func() error {
					var err error
					c, err = tccap.Open(ifname, tccap.Options{
						CaptureOptions: co,
						Directions:     dirs,
						Mode:           m,
					})
					return err
				})
				if err != nil {
					return nil, err
				}
				return c, nil
			}
			return runCapture(cmd.Context(), env, &o, open)
		},
	}
	addCaptureFlags(cmd.Flags(), &o)
	addMetaFlags(cmd.Flags(), &meta)
	cmd.Flags().StringVar(&mode, "tc-mode", "auto", "how to attach: tcx (Linux 6.6), clsact, or auto (tcx where the kernel has it)")
	addNetmaskFlag(cmd.Flags(), &netmask)
	cmd.Flags().BoolVar(&countSeen, "count-seen", false, "count every packet the hook sees (the 'seen' statistic; one map update per packet)")
	addMaxRateFlag(cmd.Flags(), &maxRate)
	return cmd
}
