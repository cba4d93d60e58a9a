//go:build !dpdk

package main

import "github.com/spf13/cobra"

// addPlatformCmds adds the commands that need optional libraries. This
// binary was built without DPDK: `make build-dpdk` builds one with it.
func addPlatformCmds(root *cobra.Command, env *cliEnv) {}
