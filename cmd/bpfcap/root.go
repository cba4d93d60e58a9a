package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// cliEnv is what every subcommand reads and writes instead of the process's
// globals, so tests can run commands in-process.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// self is the bpfcap binary, run again to compile filters where a
	// signal can end it ("": compile in this process, as tests do).
	self string
	// captureProcs, when non-zero, is the GOMAXPROCS a kernel capture
	// runs with once everything is attached (main sets 1 unless the
	// GOMAXPROCS environment variable is set; tests leave their process
	// alone). Its records go through one goroutine (ring,
	// decode, pcapng, write); more processors only add the scheduler's
	// wake-ups and hand-offs around each wait and write, which measured
	// 25-30% of bpfcap's CPU per packet at an unpinned tc capture of
	// 80 kpps, 3-10% at 130 kpps (bench/cpu-per-packet.sh).
	// Attaching keeps every processor: hundreds of programs load
	// concurrently with trace all.
	captureProcs int
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
		newJourneyCmd(env),
		newCompileHelperCmd(env),
	)
	addPlatformCmds(root, env)
	addRootFlags(root, env)
	addCompletions(root)
	root.AddCommand(newManCmd(root, env))
	return root
}

// needArgs is cobra.MinimumNArgs(1) with a message that says what to give.
func needArgs(msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return errors.New(msg)
		}
		return nil
	}
}
