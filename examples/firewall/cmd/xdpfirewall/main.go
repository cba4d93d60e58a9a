// Command xdpfirewall runs the example firewall (examples/firewall) on an
// interface with its xdpcap hook pinned, so that `bpfcap xdp PIN` can
// capture what it does:
//
//	xdpfirewall -dev eth0 -hook /sys/fs/bpf/xdpfw_hook -rule 53=pass -rule 9=drop -rule 7=tx &
//	bpfcap xdp /sys/fs/bpf/xdpfw_hook 'udp port 53'
//
// It runs until interrupted, then detaches the program and removes the pin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/bpfcap/bpfcap/examples/firewall"
	"github.com/bpfcap/bpfcap/xdpcap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stderr, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdpfirewall: %v\n", err)
		os.Exit(2)
	}
}

// rules is a repeatable -rule PORT=ACTION flag.
type rules map[uint16]xdpcap.Action

func (r rules) String() string { return fmt.Sprint(map[uint16]xdpcap.Action(r)) }

func (r rules) Set(s string) error {
	port, action, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("rule %q: want PORT=ACTION, e.g. 53=pass", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("rule %q: port: %w", s, err)
	}
	as, err := xdpcap.ParseActions(action)
	if err != nil || len(as) != 1 {
		return fmt.Errorf("rule %q: want one action of aborted, drop, pass, tx", s)
	}
	r[uint16(p)] = as[0]
	return nil
}

func run(ctx context.Context, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("xdpfirewall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.String("dev", "", "interface to attach to (required)")
	pin := fs.String("hook", "/sys/fs/bpf/xdpfw_hook", "where to pin the xdpcap hook")
	cloudflare := fs.Bool("cloudflare-layout", false, "use the build with Cloudflare xdpcap's hook layout")
	rs := rules{}
	fs.Var(rs, "rule", "PORT=ACTION (repeatable): what to do with UDP/TCP packets to or from PORT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dev == "" {
		return errors.New("-dev is required")
	}
	ifc, err := net.InterfaceByName(*dev)
	if err != nil {
		return fmt.Errorf("interface %s: %w", *dev, err)
	}
	hook, err := xdpcap.CreatePinned(*pin)
	if err != nil {
		return err
	}
	defer hook.Close()
	defer hook.Unpin()
	layout := firewall.LayoutBpfcap
	if *cloudflare {
		layout = firewall.LayoutCloudflare
	}
	fw, err := firewall.Load(firewall.Options{Hook: hook, Layout: layout})
	if err != nil {
		return err
	}
	defer fw.Close()
	for port, a := range rs {
		if err := fw.SetRule(port, a); err != nil {
			return err
		}
	}
	l, err := fw.Attach(ifc.Index)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(stderr, "xdpfirewall: running on %s, hook pinned at %s; capture with: bpfcap xdp %s\n", *dev, *pin, *pin)
	<-ctx.Done()
	return nil
}
