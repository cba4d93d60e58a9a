package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newListCmd is a placeholder until its issue lands.
func newListCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "list",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("list: not built yet")
		},
	}
}
