package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newTCCmd is a placeholder until its issue lands.
func newTCCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "tc",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("tc: not built yet")
		},
	}
}
