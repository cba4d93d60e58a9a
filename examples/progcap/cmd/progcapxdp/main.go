// Command progcapxdp runs the XDP example of bpf/bpfcap.h
// (examples/progcap) on an interface with the program pinned, so that
// `bpfcap prog` can capture the packets it emits with their rule ids:
//
//	progcapxdp -dev eth0 -pin /sys/fs/bpf/progcap_xdp -rule 53=0x35 -rule 9=0x9:drop &
//	bpfcap prog pinned /sys/fs/bpf/progcap_xdp
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

	"github.com/cilium/ebpf/link"

	"github.com/bpfcap/bpfcap/examples/progcap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stderr, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "progcapxdp: %v\n", err)
		os.Exit(2)
	}
}

// rules is a repeatable -rule PORT=ID[:drop] flag.
type rules map[uint16]progcap.Rule

func (r rules) String() string { return fmt.Sprint(map[uint16]progcap.Rule(r)) }

func (r rules) Set(s string) error {
	port, val, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("rule %q: want PORT=ID or PORT=ID:drop, e.g. 53=0x35", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("rule %q: port: %w", s, err)
	}
	id, action, _ := strings.Cut(val, ":")
	n, err := strconv.ParseUint(id, 0, 32)
	if err != nil {
		return fmt.Errorf("rule %q: id: %w", s, err)
	}
	rule := progcap.Rule{ID: uint32(n)}
	switch action {
	case "", "pass":
	case "drop":
		rule.Drop = 1
	default:
		return fmt.Errorf("rule %q: %q: want pass or drop after the id", s, action)
	}
	r[uint16(p)] = rule
	return nil
}

func run(ctx context.Context, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("progcapxdp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.String("dev", "", "interface to attach to (required)")
	pin := fs.String("pin", "/sys/fs/bpf/progcap_xdp", "where to pin the program")
	rs := rules{}
	fs.Var(rs, "rule", "PORT=ID[:drop] (repeatable): emit UDP packets to PORT with ID, and pass (default) or drop them")
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
	x, err := progcap.LoadXDP(progcap.XDPOptions{})
	if err != nil {
		return err
	}
	defer x.Close()
	for port, r := range rs {
		if err := x.SetRule(port, r.ID, r.Drop != 0); err != nil {
			return err
		}
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: x.Program, Interface: ifc.Index})
	if err != nil {
		return fmt.Errorf("attach to %s: %w", *dev, err)
	}
	defer l.Close()
	if err := x.Program.Pin(*pin); err != nil {
		return fmt.Errorf("pin the program: %w", err)
	}
	defer x.Program.Unpin()
	fmt.Fprintf(stderr, "progcapxdp: running on %s, program pinned at %s; capture with: bpfcap prog pinned %s\n", *dev, *pin, *pin)
	<-ctx.Done()
	return nil
}
