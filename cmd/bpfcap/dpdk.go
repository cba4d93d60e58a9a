//go:build dpdk

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap"
	"github.com/bpfcap/bpfcap/dpdk"
)

// dpdkFlags are the flags of `bpfcap dpdk` besides the shared capture
// flags.
type dpdkFlags struct {
	filePrefix string
	ringSize   int
	lcores     string
	noPCI      bool
	noAlignOps bool
	takeover   bool
}

func (f *dpdkFlags) config() dpdk.Config {
	return dpdk.Config{FilePrefix: f.filePrefix, Lcores: f.lcores, NoPCI: f.noPCI}
}

// newDPDKCmd builds `bpfcap dpdk PORT... [rx|tx|both] [FILTER...]` and
// `bpfcap dpdk list`.
func newDPDKCmd(env *cliEnv) *cobra.Command {
	var (
		o  captureOptions
		df dpdkFlags
	)
	cmd := &cobra.Command{
		Use:   "dpdk [--file-prefix P] PORT... [rx|tx|both] [len SNAPLEN] [FILTER...]",
		Short: "capture from the ports of a running DPDK application",
		Long: `dpdk captures packets inside a running DPDK application (the primary
process: a router, a switch, dpdk-testpmd), which tcpdump cannot see. bpfcap
joins it as a DPDK secondary process and enables DPDK's capture framework
(pdump) on the named ports; the primary must call rte_pdump_init(), as
dpdk-testpmd does. The tcpdump filter is compiled by libpcap and runs inside
the dataplane (rte_bpf), so only matching packets are copied.

Ports are DPDK device names (net_null0, 0000:3b:00.0) or port ids: see
` + "`bpfcap dpdk list`" + `. The direction word picks received (rx), transmitted (tx)
or both (the default). The file has one interface per port (name, MAC,
speed, driver); each packet carries its direction and queue, and the RSS
hash when the NIC gave one.

The statistics are DPDK's: accepted (copied for us), filtered, nombuf (the
primary found no buffer in our pool), ringfull (lost on the way to us). In
the file's statistics blocks: received = accepted + filtered + nombuf,
dropped = ringfull, OS drops = nombuf.`,
		Example: `  bpfcap dpdk list
  bpfcap dpdk net_null0 -c 100 -w /tmp/dpdk.pcapng
  bpfcap dpdk --file-prefix router 0 1 rx 'udp port 4789' | tcpdump -nr -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Device != "" {
				return errors.New("-i/dev does not apply to DPDK: name the ports as arguments (see bpfcap dpdk list)")
			}
			if o.BufferSize != 0 || o.Perf {
				return errors.New("-B/--perf set up kernel ring buffers, which DPDK does not use: size its ring with --ring-size")
			}
			if o.User != "" {
				return errors.New("-Z does not apply to DPDK: stopping the capture in the primary needs the privileges bpfcap attached with")
			}
			if df.ringSize <= 0 || df.ringSize&(df.ringSize-1) != 0 {
				return fmt.Errorf("--ring-size %d: want a power of two, e.g. %d", df.ringSize, dpdk.DefaultRingSize)
			}
			o.busyPolls = true
			open := func(ctx context.Context) (bpfcap.Source, error) {
				return openDPDK(env, &o, &df, args)
			}
			return runCapture(cmd.Context(), env, &o, open)
		},
	}
	addCaptureFlags(cmd.Flags(), &o)
	for _, name := range []string{"buffer-size", "perf", "interface", "relinquish-privileges"} {
		cmd.Flags().MarkHidden(name) // kernel-side options; refused above
	}
	addDPDKFlags(cmd.PersistentFlags(), &df)
	cmd.Flags().IntVar(&df.ringSize, "ring-size", dpdk.DefaultRingSize, "packets the ring from the primary holds (a power of two)")
	cmd.Flags().BoolVar(&df.takeover, "takeover", false, "replace a capture already enabled on a port (left by a killed bpfcap or dpdk-dumpcap)")
	cmd.Flags().BoolVar(&df.noAlignOps, "no-align-ops", false, "do not align the mempool ops tables (shows DPDK bug 1073)")
	cmd.Flags().MarkHidden("no-align-ops")
	cmd.AddCommand(newDPDKListCmd(env, &df))
	return cmd
}

type flagAdder interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
}

func addDPDKFlags(fs flagAdder, df *dpdkFlags) {
	fs.StringVar(&df.filePrefix, "file-prefix", dpdk.DefaultFilePrefix, "the DPDK application's --file-prefix")
	fs.StringVar(&df.lcores, "lcores", "", "EAL --lcores for bpfcap (default: the highest lcore id, on every CPU)")
	fs.BoolVar(&df.noPCI, "no-pci", false, "do not scan the PCI bus (only for primaries without PCI devices)")
}

// newDPDKListCmd builds `bpfcap dpdk list`.
func newDPDKListCmd(env *cliEnv, df *dpdkFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "list the ports of a running DPDK application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := dpdk.Attach(df.config())
			if err != nil {
				return err
			}
			defer p.Close()
			ports, err := p.Ports()
			if err != nil {
				return err
			}
			if err := printPorts(env.stdout, ports); err != nil {
				return err
			}
			return p.Close()
		},
	}
}

// printPorts writes one line per port.
func printPorts(w io.Writer, ports []dpdk.Port) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tNAME\tMAC\tSPEED\tDRIVER\tLINK\tQUEUES (RX/TX)")
	for _, p := range ports {
		mac := "-"
		if p.MAC != nil {
			mac = p.MAC.String()
		}
		link := "down"
		if p.LinkUp {
			link = "up"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", p.ID, p.Name, mac, formatSpeed(p.Speed), p.Driver, link, p.RxQueues, p.TxQueues)
	}
	if len(ports) == 0 {
		fmt.Fprintln(tw, "(the primary has no ports)")
	}
	return tw.Flush()
}

// formatSpeed prints bits per second the way NIC speeds are named.
func formatSpeed(bps uint64) string {
	switch {
	case bps == 0:
		return "-"
	case bps%1e9 == 0:
		return fmt.Sprintf("%d Gb/s", bps/1e9)
	default:
		return fmt.Sprintf("%d Mb/s", bps/1e6)
	}
}

// openDPDK attaches to the primary, splits args into ports, direction and
// filter, and starts the capture.
func openDPDK(env *cliEnv, o *captureOptions, df *dpdkFlags, args []string) (bpfcap.Source, error) {
	p, err := dpdk.Attach(df.config())
	if err != nil {
		return nil, err
	}
	src, err := startDPDK(env, p, o, df, args)
	if err != nil {
		p.Close()
		return nil, err
	}
	return src, nil
}

func startDPDK(env *cliEnv, p *dpdk.Process, o *captureOptions, df *dpdkFlags, args []string) (*dpdkSource, error) {
	all, err := p.Ports()
	if err != nil {
		return nil, err
	}
	// PORT... : the leading words that name ports; the first must.
	var ports []string
	for len(args) > 0 {
		if _, err := dpdk.FindPort(all, args[0]); err != nil {
			if len(ports) == 0 {
				return nil, err
			}
			break
		}
		ports, args = append(ports, args[0]), args[1:]
	}
	dir := dpdk.Both
	if len(args) > 0 {
		if d, err := dpdk.ParseDirection(args[0]); err == nil {
			dir, args = d, args[1:]
		}
	}
	if err := o.parseKeywords(args); err != nil {
		return nil, err
	}
	if o.Proto != "" && o.Proto != "eth" {
		return nil, fmt.Errorf("proto %s: DPDK ports carry Ethernet frames; use proto eth or leave proto out", o.Proto)
	}
	if o.Device != "" || o.Pages != 0 {
		return nil, errors.New("dev/pages do not apply to DPDK: name the ports as arguments and size the ring with --ring-size")
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	c, err := p.Open(dpdk.CaptureOptions{
		Ports:      ports,
		Direction:  dir,
		Filter:     o.Filter,
		SnapLen:    o.snaplen(),
		RingSize:   df.ringSize,
		NoAlignOps: df.noAlignOps,
		Takeover:   df.takeover,
	})
	if err != nil {
		return nil, err
	}
	if fb := c.FilterFallback(); fb != "" {
		fmt.Fprintf(env.stderr, "bpfcap: %s\n", fb)
	}
	if o.Verbose {
		for _, n := range c.Notes() {
			fmt.Fprintf(env.stderr, "bpfcap: dpdk: %s\n", n)
		}
	}
	return &dpdkSource{Capture: c, p: p, stderr: env.stderr, verbose: o.Verbose}, nil
}

// dpdkSource is the capture plus the attachment it runs in: closing it
// stops the capture, prints DPDK's own counters, and detaches.
type dpdkSource struct {
	*dpdk.Capture
	p       *dpdk.Process
	stderr  io.Writer
	verbose bool
	closed  bool
}

// Close stops the capture, reports DPDK's counters on stderr, and
// detaches from the primary.
func (s *dpdkSource) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.Capture.Close()
	for _, ps := range s.PortStats() {
		fmt.Fprintf(s.stderr, "%s: dpdk accepted %d, filtered %d, nombuf %d, ringfull %d\n", ps.Port, ps.Accepted, ps.Filtered, ps.NoMbuf, ps.RingFull)
	}
	if s.verbose {
		for _, n := range s.Notes() {
			fmt.Fprintf(s.stderr, "bpfcap: dpdk: %s\n", n)
		}
	}
	if s.PrimaryExited() {
		fmt.Fprintf(s.stderr, "bpfcap: the DPDK primary %q exited; capture ended\n", s.p.FilePrefix())
	}
	if cerr := s.p.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dpdk: %w", err)
	}
	return nil
}
