package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newFilterCmd is a placeholder until its issue lands.
func newFilterCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "filter",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("filter: not built yet")
		},
	}
}
