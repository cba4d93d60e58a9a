//go:build dpdk

package main

import "github.com/spf13/cobra"

// addPlatformCmds adds the commands that need optional libraries. This
// binary was built with DPDK (`make build-dpdk`): it has `bpfcap dpdk`.
func addPlatformCmds(root *cobra.Command, env *cliEnv) {
	root.AddCommand(newDPDKCmd(env))
}
