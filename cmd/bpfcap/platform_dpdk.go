//go:build dpdk

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/bpfcap/bpfcap/dpdk"
)

// addPlatformCmds adds the commands that need optional libraries. This
// binary was built with DPDK (`make build-dpdk`): it has `bpfcap dpdk`.
func addPlatformCmds(root *cobra.Command, env *cliEnv) {
	root.AddCommand(newDPDKCmd(env))
}

// platformHint returns the next step for an error of the optional
// libraries (DPDK here), or "".
func platformHint(err error) string {
	switch {
	case errors.Is(err, dpdk.ErrNoPrimary):
		return "start the DPDK application first, or pass --file-prefix with the prefix it was started with"
	case errors.Is(err, dpdk.ErrNoHugepages):
		return "free hugepages or pass a smaller --ring-size"
	case errors.Is(err, dpdk.ErrPortCaptured):
		return "stop that capture, or pass --takeover to replace it"
	}
	return ""
}
