package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/probe"
)

// newListCmd builds `bpfcap list [PATTERN]`: the kernel functions and
// tracepoints that take an sk_buff, with the argument that holds it.
func newListCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "list [PATTERN]",
		Short: "list the kernel functions and tracepoints that take an sk_buff",
		Long: `list prints the hook points bpfcap trace can attach to: kernel functions
(kprobe, fentry, fexit) and tracepoints (tp_btf, raw_tp, tracepoint) that
take a struct sk_buff *, with the argument that holds it. PATTERN is a
substring, or a shell glob when it contains *, ? or [.

Functions come from the kernel's BTF; a kprobe may still refuse one that is
on the kprobe blacklist or marked notrace.`,
		Example: `  bpfcap list kfree_skb
  bpfcap list 'ip_*rcv*'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := ""
			if len(args) == 1 {
				pattern = args[0]
			}
			r, err := probe.NewResolver()
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			points, err := r.List(pattern)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			if len(points) == 0 {
				return fmt.Errorf("list: no function or tracepoint matching %q takes an sk_buff: try a shorter pattern", pattern)
			}
			tw := tabwriter.NewWriter(env.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "KINDS\tHOOK\tSKB\tARGUMENTS")
			for _, p := range points {
				fmt.Fprintf(tw, "%s\t%s\targ%d\t%s\n", strings.Join(p.Kinds, ","), p.Name, p.Arg, p.Signature)
			}
			return tw.Flush()
		},
	}
}
