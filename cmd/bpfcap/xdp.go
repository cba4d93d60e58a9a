package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newXDPCmd is a placeholder until its issue lands.
func newXDPCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "xdp",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("xdp: not built yet")
		},
	}
}
