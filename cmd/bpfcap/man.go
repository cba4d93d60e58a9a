package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newManCmd builds `bpfcap man`: the manual page, generated from the
// commands, their help and their flags (roff, for man -l or MANPATH).
func newManCmd(root *cobra.Command, env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "man",
		Short:  "print bpfcap's manual page (roff): bpfcap man > bpfcap.1; man -l bpfcap.1",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return writeMan(env.stdout, root)
		},
	}
}

// roff escapes text for a roff line: backslashes, and a leading dot or
// quote that would start a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// writeMan writes the manual page of root and its visible commands.
func writeMan(w io.Writer, root *cobra.Command) error {
	var b strings.Builder
	v, _, _ := strings.Cut(strings.TrimPrefix(versionText(), "bpfcap version "), "\n")
	fmt.Fprintf(&b, ".TH BPFCAP 1 \"\" \"bpfcap %s\" \"User Commands\"\n", strings.TrimSpace(roff(v)))
	b.WriteString(".SH NAME\nbpfcap \\- " + roff(root.Short))
	b.WriteString(".SH SYNOPSIS\n")
	for _, c := range manCommands(root) {
		b.WriteString(".B " + roff(c.CommandPath()))
		if u := strings.TrimSpace(strings.TrimPrefix(c.Use, c.Name())); u != "" && c != root {
			b.WriteString(roff(u))
		}
		b.WriteString(".br\n")
	}
	b.WriteString(".SH DESCRIPTION\n" + roff(root.Long))
	writeManFlags(&b, root.LocalFlags())
	b.WriteString(".SH COMMANDS\n")
	for _, c := range manCommands(root) {
		if c == root {
			continue
		}
		b.WriteString(".SS \"" + strings.ReplaceAll(roff(c.CommandPath()), "\n", "") + "\"\n")
		long := c.Long
		if long == "" {
			long = c.Short
		}
		b.WriteString(".PP\n" + roff(long))
		if c.Example != "" {
			b.WriteString(".PP\nExamples:\n.nf\n" + roff(c.Example) + ".fi\n")
		}
		writeManFlags(&b, c.LocalFlags())
	}
	b.WriteString(".SH SEE ALSO\n.BR tcpdump (8),\n.BR pcap\\-filter (7),\n.BR tshark (1),\n.BR wireshark (1),\n.BR bpftool (8)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// manCommands returns root and its visible commands, sorted by name.
func manCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	var subs []*cobra.Command
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() {
			subs = append(subs, c)
		}
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
	return append(out, subs...)
}

// writeManFlags lists the visible flags of fs.
func writeManFlags(b *strings.Builder, fs *pflag.FlagSet) {
	first := true
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if first {
			b.WriteString(".PP\nOptions:\n")
			first = false
		}
		name := "\\fB\\-\\-" + strings.TrimSpace(roff(f.Name)) + "\\fR"
		if f.Shorthand != "" {
			name = "\\fB\\-" + f.Shorthand + "\\fR, " + name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if varname != "" {
			name += " \\fI" + strings.TrimSpace(roff(varname)) + "\\fR"
		}
		b.WriteString(".TP\n" + name + "\n" + roff(usage))
	})
}
