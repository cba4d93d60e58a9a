package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bpfcap/bpfcap/filter"
)

// newExtcapCmd builds `bpfcap extcap`, the Wireshark extcap interface.
// Wireshark runs extcaps with its own arguments, so the command parses
// them itself (any order, unknown ones tolerated).
func newExtcapCmd(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "extcap --extcap-interfaces | --extcap-interface IF (--extcap-dlts | --extcap-config | --capture --fifo PATH) [OPTIONS]",
		Short: "Wireshark extcap interface: pick bpfcap's capture points in Wireshark's interface list",
		Long: `extcap makes bpfcap a Wireshark capture source (the extcap protocol,
extcap(4)): Wireshark's interface list then shows

  bpfcap-drops  "bpfcap: kfree_skb drops"      every dropped packet, with its drop reason
  bpfcap-trace  kernel functions/tracepoints    hook specs as bpfcap trace takes them
  bpfcap-tc     tc ingress and egress           of a device
  bpfcap-xdp    XDP                             an xdpcap hook (with verdicts) or a device
  bpfcap-prog   packets a BPF program emits     with bpfcap_output() (bpf/bpfcap.h)
  bpfcap-dpdk   DPDK ports                      only in binaries built with make build-dpdk

with their options in the interface's settings (the gear icon; tshark:
-o extcap.bpfcap_tc.dev:eth0, the option name without dashes). The capture
filter box takes a tcpdump expression, which bpfcap runs in the kernel and
which Wireshark checks with bpfcap as you type. Packets arrive as pcapng with
bpfcap's metadata (drop reason, verdict, direction) in each packet.

Install: ` + "`make install-extcap`" + ` (or ` + "`bpfcap extcap --install DIR`" + `) writes
DIR/bpfcap-extcap, a script running this binary's ` + "`extcap`" + ` command, into
Wireshark's extcap folder (Help > About > Folders, or tshark -G folders:
"Personal Extcap path" where Wireshark has one (releases after 4.0),
else "Extcap path",
which for root is the global one; non-root users of Wireshark 4.0 can set
WIRESHARK_EXTCAP_DIR instead). bpfcap needs root (or CAP_BPF, CAP_PERFMON
and CAP_NET_ADMIN) to attach, and so does the Wireshark that runs it.

bpfcap stops and detaches everything when Wireshark stops the capture
(SIGTERM) or closes the fifo. Errors go to stderr with exit status 2, which
Wireshark shows; notices and statistics go to the Log file option's file.`,
		Example: `  bpfcap extcap --extcap-interfaces
  bpfcap extcap --extcap-interface bpfcap-tc --extcap-config
  bpfcap extcap --capture --extcap-interface bpfcap-tc --dev eth0 --extcap-capture-filter 'udp port 53' --fifo /tmp/dns.pcapng
  tshark -i bpfcap-drops -f 'tcp port 443' -a duration:10
  sudo make install-extcap EXTCAP_DIR=/usr/lib/x86_64-linux-gnu/wireshark/extcap`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExtcap(cmd.Context(), env, cmd, args)
		},
	}
	return cmd
}

// extcapFlags are the extcap protocol's arguments and bpfcap's own.
type extcapFlags struct {
	interfaces, dlts, config, capture, help bool
	version, iface, fifo, filter, install   string
	// options holds every interface option by name (boolflags as "true").
	options map[string]pflag.Value
}

// newExtcapFlagSet returns the flag set of `bpfcap extcap`: the
// protocol's arguments, the union of all interfaces' options, and the
// arguments Wireshark may pass that bpfcap does not use. Other unknown
// flags are skipped (with the value that follows them), so a newer
// Wireshark's additions do not break captures.
func newExtcapFlagSet(f *extcapFlags, ifaces []extcapInterface) *pflag.FlagSet {
	fs := pflag.NewFlagSet("extcap", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.BoolVar(&f.interfaces, "extcap-interfaces", false, "list the interfaces bpfcap offers")
	fs.StringVar(&f.version, "extcap-version", "", "Wireshark's version (accepted, not used)")
	fs.Lookup("extcap-version").NoOptDefVal = "unknown"
	fs.StringVar(&f.iface, "extcap-interface", "", "the interface to act on")
	fs.BoolVar(&f.dlts, "extcap-dlts", false, "print the interface's link type")
	fs.BoolVar(&f.config, "extcap-config", false, "print the interface's options")
	fs.BoolVar(&f.capture, "capture", false, "capture into --fifo")
	fs.StringVar(&f.fifo, "fifo", "", "the fifo (or file) to write pcapng to")
	fs.StringVar(&f.filter, "extcap-capture-filter", "", "the capture filter (a tcpdump expression); without --capture: check it")
	fs.StringVar(&f.install, "install", "", "write the bpfcap-extcap wrapper into this extcap `directory`")
	fs.BoolVarP(&f.help, "help", "h", false, "show help")
	// Passed by Wireshark, unused: bpfcap declares no toolbar controls
	// and no reloadable options.
	for _, name := range []string{"extcap-control-in", "extcap-control-out", "extcap-reload-option", "debug-file"} {
		fs.String(name, "", "ignored")
	}
	for _, name := range []string{"debug", "extcap-cleanup-postkill"} {
		fs.Bool(name, false, "ignored")
	}
	f.options = map[string]pflag.Value{}
	for _, ifc := range ifaces {
		for _, a := range ifc.args {
			if _, ok := f.options[a.call]; ok {
				continue
			}
			if a.typ == "boolflag" {
				fs.Bool(a.call, false, a.display)
			} else {
				fs.String(a.call, "", a.display)
			}
			f.options[a.call] = fs.Lookup(a.call).Value
		}
	}
	return fs
}

// runExtcap answers one extcap call.
func runExtcap(ctx context.Context, env *cliEnv, cmd *cobra.Command, args []string) error {
	ifaces := extcapInterfaces()
	var f extcapFlags
	fs := newExtcapFlagSet(&f, ifaces)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("extcap: %w (see bpfcap extcap --help)", err)
	}
	if f.help {
		return cmd.Help()
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("extcap: unexpected argument %q: extcap options are --name value (see bpfcap extcap --help)", fs.Arg(0))
	}
	if f.install != "" {
		return installExtcapWrapper(f.install, env.stdout)
	}
	if f.interfaces {
		return printInterfaces(env.stdout, extcapVersion(), ifaces)
	}
	if !f.dlts && !f.config && !f.capture && !fs.Changed("extcap-capture-filter") {
		return errors.New("extcap: nothing to do: give --extcap-interfaces, or --extcap-interface IF with --extcap-dlts, --extcap-config or --capture --fifo PATH (see bpfcap extcap --help)")
	}
	ifc, err := findExtcapInterface(ifaces, f.iface)
	if err != nil {
		return fmt.Errorf("extcap: %w", err)
	}
	switch {
	case f.dlts:
		return printDLTs(env.stdout, ifc)
	case f.config:
		return printConfig(env.stdout, ifc)
	case f.capture:
		vals, err := extcapOptionValues(fs, &f, ifc)
		if err != nil {
			return err
		}
		return extcapCapture(ctx, env, ifc, f.fifo, f.filter, vals)
	}
	return checkExtcapFilter(env.stdout, ifc, f.filter)
}

// extcapOptionValues collects the options given for ifc, refusing those
// of other interfaces.
func extcapOptionValues(fs *pflag.FlagSet, f *extcapFlags, ifc *extcapInterface) (extcapValues, error) {
	own := map[string]bool{}
	var names []string
	for _, a := range ifc.args {
		own[a.call] = true
		names = append(names, "--"+a.call)
	}
	v := extcapValues{ifc: ifc, set: map[string]string{}}
	var foreign []string
	for name, val := range f.options {
		if !fs.Changed(name) {
			continue
		}
		if !own[name] {
			foreign = append(foreign, "--"+name)
			continue
		}
		if val.Type() == "bool" && val.String() != "true" {
			continue // --perf=false
		}
		v.set[name] = val.String()
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		return v, fmt.Errorf("%s: %s: not an option of this interface (its options: %s)", ifc.name, strings.Join(foreign, ", "), strings.Join(names, ", "))
	}
	return v, nil
}

// extcapCapture runs the bpfcap command ifc stands for, writing pcapng to
// fifo, until ctx ends (Wireshark sends SIGTERM), the fifo's reader goes
// away, or the capture fails. Only errors reach stderr (Wireshark shows
// any stderr output as an error); notices and statistics go to the log
// file option's file.
func extcapCapture(ctx context.Context, env *cliEnv, ifc *extcapInterface, fifo, expr string, vals extcapValues) (err error) {
	if fifo == "" {
		return fmt.Errorf("%s: --capture needs --fifo PATH (the fifo or file to write pcapng to)", ifc.name)
	}
	out := &fifoWriter{ctx: ctx, path: fifo}
	defer func() {
		out.Close()
		if err != nil {
			err = fmt.Errorf("%s: %w", ifc.name, err)
			out.release()
		}
	}()
	flags, words, err := ifc.command(vals)
	if err != nil {
		return err
	}
	var log io.Writer = io.Discard
	if path := vals.get("log-file"); path != "" {
		lf, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer lf.Close()
		log = lf
	}
	argv := append(append([]string{}, flags...), "-w", "-", "--")
	argv = append(argv, words...)
	if strings.TrimSpace(expr) != "" {
		argv = append(argv, expr)
	}
	fmt.Fprintf(log, "bpfcap extcap %s: bpfcap %s\n", ifc.name, quoteArgs(argv))

	root := newRootCmd(&cliEnv{stdin: env.stdin, stdout: out, stderr: log})
	root.SetArgs(argv)
	root.SetOut(log)
	root.SetErr(log)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(log, "bpfcap: %v\n", err)
		return err
	}
	if err := out.Close(); err != nil && !isClosedPipe(err) {
		return fmt.Errorf("close %s: %w", fifo, err)
	}
	return nil
}

// checkExtcapFilter answers Wireshark's capture filter check (a call with
// --extcap-capture-filter and no --capture): nothing on stdout if expr
// compiles for the interface's link type, else one line saying why.
// The exit status stays 0 either way: Wireshark ignores the answer of an
// extcap that fails.
func checkExtcapFilter(w io.Writer, ifc *extcapInterface, expr string) error {
	lt, err := filter.ParseProto(ifc.filterProto)
	if err != nil {
		return fmt.Errorf("%s: %w", ifc.name, err)
	}
	if _, err := filter.Compile(expr, lt, defaultSnaplen); err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		if _, werr := fmt.Fprintln(w, msg); werr != nil {
			return fmt.Errorf("write filter check: %w", werr)
		}
	}
	return nil
}

// extcapVersion is the version Wireshark's About dialog shows for bpfcap:
// the module version, else the VCS revision, else "devel".
func extcapVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

// quoteArgs formats argv for the log, quoting words with spaces.
func quoteArgs(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
