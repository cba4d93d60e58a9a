package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newTraceCmd is a placeholder until its issue lands.
func newTraceCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "trace",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("trace: not built yet")
		},
	}
}
