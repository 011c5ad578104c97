package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/proto/events"
)

// drainSetup is what `cellgrid cell drain|undrain` resolved from its flags.
type drainSetup struct {
	Verb, ID string
	Infra    infraFlags
}

// drainCmds are `cellgrid cell drain` and `cellgrid cell undrain`: ask a
// running cell (over NATS, from anywhere in the supercluster) to stop or
// resume taking new tickets. Running matches carry on; the topology shows
// the cell as draining so clients join elsewhere.
func drainCmds(rf *rootFlags, st starters) []*cobra.Command {
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
				return st.drain(cmd.Context(), cmd.OutOrStdout(), drainSetup{Verb: verb, ID: id, Infra: inf})
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

// startDrain sends the drain or undrain request and prints the cell's answer.
func startDrain(ctx context.Context, out io.Writer, s drainSetup) error {
	nc, err := s.Infra.connectNATS("cellgrid-ops", false)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, events.CellDrainSubject(s.ID), []byte(s.Verb))
	if err != nil {
		return fmt.Errorf("%s %s: %w", s.Verb, s.ID, err)
	}
	fmt.Fprintf(out, "cell %s: %s\n", s.ID, msg.Data)
	return nil
}
