package main

import (
	"net"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/probe"
)

// Shell completion (cobra's `bpfcap completion bash|zsh|fish`): hook
// specs from `bpfcap list`, devices, directions, protos and keywords.

// hookKinds are the spec prefixes completed before a name is typed.
var hookKinds = []string{"kprobe:", "fentry:", "fexit:", "tp_btf:", "raw_tp:", "tracepoint:"}

// completeDevices returns the network devices whose names start with
// prefix.
func completeDevices(prefix string) []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []string
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, prefix) {
			out = append(out, ifc.Name)
		}
	}
	return out
}

// completeHooks completes a hook spec: the kinds that attach on this
// kernel (as `bpfcap list` marks them), then the hook points `bpfcap list`
// shows for the kind typed.
func completeHooks(toComplete string) []string {
	r, err := probe.NewResolver()
	if err != nil {
		return nil
	}
	points, err := r.List("")
	if err != nil {
		return nil
	}
	dead := deadFunctionKinds(r, points)
	kind, name, ok := strings.Cut(toComplete, ":")
	if !ok {
		var out []string
		for _, k := range hookKinds {
			if _, no := dead[strings.TrimSuffix(k, ":")]; !no && strings.HasPrefix(k, toComplete) {
				out = append(out, k)
			}
		}
		return out
	}
	want := kind
	if want == "tp" {
		want = "tracepoint"
	}
	if want == "raw_tracepoint" {
		want = "raw_tp"
	}
	if _, no := dead[want]; no {
		return nil
	}
	var out []string
	for _, p := range points {
		if slices.Contains(p.Kinds, want) && strings.HasPrefix(p.Name, name) {
			out = append(out, kind+":"+p.Name)
		}
	}
	return out
}

// completeKeyword completes the word after a bpftool-style keyword.
func completeKeyword(prev, toComplete string, protos []string) ([]string, bool) {
	switch prev {
	case "dev":
		return completeDevices(toComplete), true
	case "proto":
		return prefixed(protos, toComplete), true
	case "len", "pages", "data_out":
		return nil, true
	}
	return nil, false
}

func prefixed(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}

const noFiles = cobra.ShellCompDirectiveNoFileComp

// addCompletions wires completion into the capture commands of root.
func addCompletions(root *cobra.Command) {
	devices := func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return append(completeDevices(toComplete), prefixed([]string{"any"}, toComplete)...), noFiles
	}
	for _, c := range root.Commands() {
		if c.Flags().Lookup("interface") != nil {
			c.RegisterFlagCompletionFunc("interface", devices)
		}
		if c.Flags().Lookup("direction") != nil {
			c.RegisterFlagCompletionFunc("direction", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return []string{"in", "out", "inout"}, noFiles
			})
		}
		switch c.Name() {
		case "trace":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					if out, ok := completeKeyword(args[len(args)-1], toComplete, append(probe.ProtoNames(), probe.ProtoAuto)); ok {
						return out, noFiles
					}
				}
				out := completeHooks(toComplete)
				if len(args) > 0 {
					out = append(out, prefixed([]string{"proto", "len", "dev", "pages", "data_out"}, toComplete)...)
				}
				directive := noFiles
				if strings.HasSuffix(toComplete, ":") || !strings.Contains(toComplete, ":") {
					directive |= cobra.ShellCompDirectiveNoSpace
				}
				return out, directive
			}
		case "tc":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				switch {
				case len(args) == 0:
					return prefixed([]string{"dev"}, toComplete), noFiles
				case len(args) == 1 && args[0] == "dev":
					return completeDevices(toComplete), noFiles
				case len(args) == 2 && args[0] == "dev":
					return prefixed([]string{"ingress", "egress", "both"}, toComplete), noFiles
				}
				out, _ := completeKeyword(args[len(args)-1], toComplete, nil)
				return out, noFiles
			}
		case "xdp":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				switch {
				case len(args) == 0:
					// A pinned hook (a file) or dev.
					return prefixed([]string{"dev"}, toComplete), cobra.ShellCompDirectiveDefault
				case len(args) == 1 && args[0] == "dev":
					return completeDevices(toComplete), noFiles
				}
				return nil, noFiles
			}
		case "list":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return nil, noFiles
			}
		}
	}
}
