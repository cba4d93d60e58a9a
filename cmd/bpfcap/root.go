package main

import (
	"io"

	"github.com/spf13/cobra"
)

// cliEnv is what every subcommand reads and writes instead of the process's
// globals, so tests can run commands in-process.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func newRootCmd(env *cliEnv) *cobra.Command {
	root := &cobra.Command{
		Use:   "bpfcap",
		Short: "capture packets at kernel hooks, XDP, tc and DPDK into pcapng",
		Long: `bpfcap captures the packets tcpdump cannot see: the ones dropped in
kfree_skb, the ones an XDP program bounced, the ones inside a DPDK dataplane.
Filters are tcpdump expressions, run in the kernel as eBPF. Output is pcapng
(to a file, or live to a pipe) or one line per packet on a terminal.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newFilterCmd(env),
		newTraceCmd(env),
		newListCmd(env),
		newXDPCmd(env),
		newTCCmd(env),
		newProgCmd(env),
		newExtcapCmd(env),
		newReadCmd(env),
	)
	addPlatformCmds(root, env)
	addRootFlags(root, env)
	addCompletions(root)
	root.AddCommand(newManCmd(root, env))
	return root
}
