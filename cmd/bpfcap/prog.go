package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newProgCmd builds `bpfcap prog (id ID | pinned PATH | name NAME) [FILTER...]`.
// Placeholder: the prog helper replaces this file.
func newProgCmd(env *cliEnv) *cobra.Command {
	return &cobra.Command{
		Use:    "prog (id ID | pinned PATH | name NAME) [FILTER...]",
		Short:  "capture the packets a BPF program emits with bpfcap_output() (bpf/bpfcap.h)",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("bpfcap prog: not built yet")
		},
	}
}
