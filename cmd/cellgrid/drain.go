package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/proto/events"
)

// drainCmds are `cellgrid cell drain` and `cellgrid cell undrain`: ask a
// running cell (over NATS, from anywhere in the supercluster) to stop or
// resume taking new tickets. Running matches carry on; the topology shows
// the cell as draining so clients join elsewhere.
func drainCmds(rf *rootFlags) []*cobra.Command {
	mk := func(verb, short string) *cobra.Command {
		var id string
		var inf infraFlags
		cmd := &cobra.Command{
			Use:   verb,
			Short: short,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if _, err := rf.logger(); err != nil {
					return err
				}
				nc, err := inf.connectNATS("cellgrid-ops", false)
				if err != nil {
					return err
				}
				defer nc.Close()
				msg, err := nc.Request(events.CellDrainSubject(id), []byte(verb), 5*time.Second)
				if err != nil {
					return fmt.Errorf("%s %s: %w", verb, id, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cell %s: %s\n", id, msg.Data)
				return nil
			},
		}
		cmd.Flags().StringVar(&id, "id", "", "cell id (required)")
		inf.registerNATS(cmd.Flags(), "any NATS server of the supercluster")
		_ = cmd.MarkFlagRequired("id")
		return cmd
	}
	return []*cobra.Command{
		mk("drain", "Stop a cell taking new tickets (running matches finish)"),
		mk("undrain", "Let a drained cell take new tickets again"),
	}
}
