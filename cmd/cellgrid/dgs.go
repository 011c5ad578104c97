package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/dgs"
)

func dgsCmd(st starters) *cobra.Command {
	return &cobra.Command{
		Use:                "dgs [--cell ID --id ID --nats URL --addr HOST:PORT …]",
		Short:              "Run a dedicated game server (the sample arena) for a cell's fleet",
		DisableFlagParsing: true, // dgs.Main owns its flags: the launcher's contract
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := st.dgs(args, cmd.ErrOrStderr()); code != 0 {
				return errExit(code)
			}
			return nil
		},
	}
}

func startDGS(args []string, stderr io.Writer) int { return dgs.Main(args, stderr) }
