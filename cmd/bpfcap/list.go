package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/hook"
	"github.com/bpfcap/bpfcap/probe"
)

// newListCmd builds `bpfcap list [PATTERN]`: the kernel functions and
// tracepoints that take an sk_buff, with the argument that holds it.
func newListCmd(env *cliEnv) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list [PATTERN]",
		Short: "list the kernel functions and tracepoints that take an sk_buff",
		Long: `list prints the hook points bpfcap trace can attach to: kernel functions
(kprobe, fentry, fexit) and tracepoints (tp_btf, raw_tp, tracepoint) that
take a struct sk_buff *, with the argument that holds it. PATTERN is a
substring, or a shell glob when it contains *, ? or [.

Functions come from the kernel's BTF; a kprobe may still refuse one that is
on the kprobe blacklist or marked notrace. Kinds of hook that do not attach
on this kernel (no kprobes, fentry refused by policy) are left out, and so
are the functions only they reach; --all lists them, marked KIND!.`,
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
			dead := deadFunctionKinds(r, points)
			tw := tabwriter.NewWriter(env.stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "KINDS\tHOOK\tSKB\tARGUMENTS")
			hidden := 0
			for _, p := range points {
				kinds, live := markKinds(p.Kinds, dead)
				if !live && !all {
					hidden++
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\targ%d\t%s\n", kinds, p.Name, p.Arg, p.Signature)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(dead) > 0 {
				var why []string
				for _, k := range []string{"kprobe", "fentry", "fexit"} {
					if err, ok := dead[k]; ok {
						if errors.Is(err, probe.ErrNotSupported) {
							why = append(why, k+" (not supported)")
						} else {
							why = append(why, k+" (refused)")
						}
					}
				}
				if all {
					fmt.Fprintf(env.stderr, "bpfcap: KIND! does not attach on this kernel: %s (bpfcap trace -v KIND:FUNC says why)\n", strings.Join(why, ", "))
				} else {
					fmt.Fprintf(env.stderr, "bpfcap: %d kernel functions not listed: %s do not attach on this kernel (--all lists them)\n", hidden, strings.Join(why, ", "))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list hook points whose kinds do not attach on this kernel too (marked KIND!)")
	return cmd
}

// deadFunctionKinds probes kprobe, fentry and fexit once, on a function
// of points, and returns the kinds that do not attach with the reason.
// Kinds it cannot tell about (no privilege) count as attaching.
func deadFunctionKinds(r *probe.Resolver, points []probe.HookPoint) map[string]error {
	fn := ""
	for _, p := range points {
		if slices.Contains(p.Kinds, "kprobe") {
			fn = p.Name
			if p.Name == "ip_rcv" || p.Name == "kfree_skb" {
				break
			}
		}
	}
	if fn == "" {
		return nil
	}
	dead := map[string]error{}
	for kind, err := range r.FunctionKinds(fn) {
		if err != nil && !errors.Is(err, hook.ErrPermission) {
			dead[kind] = err
		}
	}
	return dead
}

// markKinds writes kinds with a "!" after each that does not attach, and
// says whether any does.
func markKinds(kinds []string, dead map[string]error) (string, bool) {
	out := make([]string, len(kinds))
	live := false
	for i, k := range kinds {
		out[i] = k
		if _, ok := dead[k]; ok {
			out[i] += "!"
		} else {
			live = true
		}
	}
	return strings.Join(out, ","), live
}
