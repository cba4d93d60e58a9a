package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newExtcapCmd builds `bpfcap extcap`, the Wireshark extcap interface.
// Placeholder: the extcap helper replaces this file.
func newExtcapCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "extcap",
		Short:  "Wireshark extcap interface",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("bpfcap extcap: not built yet")
		},
	}
}
