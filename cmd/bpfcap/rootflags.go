package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/spf13/cobra"
)

// rootFlags are the tcpdump habits bpfcap takes without a command:
// --version, -D, -r FILE (with -c and the display flags).
type rootFlags struct {
	version bool
	list    bool
	read    string
	count   uint64
	td      tcpdumpOptions
	// capture flags given without a command, refused with the commands
	capture []string
}

// addRootFlags makes `bpfcap --version`, `bpfcap -D` and `bpfcap -r FILE
// [FILTER]` work as in tcpdump, and refuses tcpdump's capture flags given
// without a command by naming the commands that take them.
func addRootFlags(root *cobra.Command, env *cliEnv) {
	rf := &rootFlags{}
	fs := root.Flags()
	fs.BoolVar(&rf.version, "version", false, "print bpfcap's version, commit, Go and libpcap versions")
	fs.BoolVarP(&rf.list, "list-interfaces", "D", false, "list the network devices bpfcap can capture at (tc, xdp, trace -i)")
	fs.StringVarP(&rf.read, "read", "r", "", "print the packets of this pcapng or pcap `file` (as bpfcap read FILE)")
	fs.Uint64VarP(&rf.count, "count", "c", 0, "with -r: stop after this many packets")
	for _, f := range []struct{ long, short string }{
		{"interface", "i"}, {"write", "w"}, {"snaplen", "s"}, {"buffer-size", "B"},
		{"relinquish-privileges", "Z"},
	} {
		fs.StringP(f.long, f.short, "", "")
		fs.MarkHidden(f.long)
		rf.capture = append(rf.capture, f.long)
	}
	fs.BoolP("verbose", "v", false, "")
	fs.MarkHidden("verbose")
	addTcpdumpFlags(fs, &rf.td)
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 && rf.read == "" {
			return fmt.Errorf("unknown command %q: see bpfcap --help (bpfcap -r FILE reads a file; capture with bpfcap trace, tc, xdp or prog)", args[0])
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case rf.version:
			_, err := io.WriteString(env.stdout, versionText())
			return err
		case rf.list:
			return listDevices(env.stdout)
		}
		for _, name := range rf.capture {
			if fs.Changed(name) {
				f := fs.Lookup(name)
				return fmt.Errorf("-%s: bpfcap captures with a command first: bpfcap tc -i IF [FILTER] (tc ingress and egress of a device), bpfcap xdp dev IF, bpfcap trace HOOK... [FILTER] (e.g. tp_btf:kfree_skb for drops)", f.Shorthand)
			}
		}
		if fs.Changed("verbose") && rf.read == "" {
			return errors.New("-v: bpfcap captures with a command first: bpfcap trace|tc|xdp|prog ... -v")
		}
		if err := rf.td.check(); err != nil {
			return err
		}
		if rf.td.Lines && rf.read == "" {
			return errors.New("-l: bpfcap captures with a command first: bpfcap tc -i IF -l | grep ...")
		}
		if rf.read != "" {
			ro := readOptions{Count: rf.count, lines: rf.td.lineOptions()}
			ro.lines.Verbose = fs.Changed("verbose")
			return runRead(env, rf.read, strings.Join(args, " "), ro)
		}
		return cmd.Help()
	}
}

// listDevices prints the network devices of bpfcap's namespace as tcpdump
// -D does ("1.eth0 [Up, Running]"), then the "any" pseudo-device.
func listDevices(w io.Writer) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	for i, ifc := range ifs {
		var st []string
		if ifc.Flags&net.FlagUp != 0 {
			st = append(st, "Up")
		}
		if ifc.Flags&net.FlagRunning != 0 {
			st = append(st, "Running")
		}
		if ifc.Flags&net.FlagLoopback != 0 {
			st = append(st, "Loopback")
		}
		fmt.Fprintf(w, "%d.%s [%s]\n", i+1, ifc.Name, strings.Join(st, ", "))
	}
	_, err = fmt.Fprintf(w, "%d.any (every device: bpfcap trace HOOK without -i, or -i any)\n", len(ifs)+1)
	return err
}
