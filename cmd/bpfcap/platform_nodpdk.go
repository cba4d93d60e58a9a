//go:build !dpdk

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// addPlatformCmds adds the commands that need optional libraries. This
// binary was built without DPDK, so `dpdk` only says how to get one that
// has it.
func addPlatformCmds(root *cobra.Command, env *cliEnv) {
	root.AddCommand(&cobra.Command{
		Use:                "dpdk",
		Short:              "capture from DPDK ports (needs a binary built with make build-dpdk)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("dpdk: this bpfcap was built without DPDK support: build one with make build-dpdk (needs libdpdk-dev)")
		},
	})
}

// platformHint returns the next step for an error of the optional
// libraries: none in a binary built without them.
func platformHint(error) string { return "" }
