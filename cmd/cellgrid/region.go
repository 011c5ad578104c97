package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/proto/events"
)

// regionCmd is `cellgrid region failover|restore|status`: operator
// commands answered by the global layer over NATS. A failover is durable
// (a JetStream key-value record) and sticky: the region's cells stay out
// of /topology's routing and refuse new tickets with a redirect until
// `restore`, whatever their heartbeats say; running matches finish.
func regionCmd(rf *rootFlags) *cobra.Command {
	var inf infraFlags
	root := &cobra.Command{Use: "region", Short: "Fail a region over, restore it, show regions"}
	inf.registerNATS(root.PersistentFlags(), "any NATS server of the supercluster")
	send := func(cmd *cobra.Command, op events.RegionOp) error {
		if _, err := rf.logger(); err != nil {
			return err
		}
		nc, err := inf.connectNATS("cellgrid-ops", false)
		if err != nil {
			return err
		}
		defer nc.Close()
		reply, err := regionRequest(nc, op)
		if reply.Regions != nil {
			printRegions(cmd.OutOrStdout(), reply.Regions)
		}
		return err
	}
	var from, to string
	failover := &cobra.Command{
		Use:   "failover",
		Short: "Send a region's players elsewhere (sticky until restore)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, events.RegionOp{Op: events.RegionOpFailover, Region: from, To: to})
		},
	}
	failover.Flags().StringVar(&from, "from", "", "region to fail over (required)")
	failover.Flags().StringVar(&to, "to", "", "region to send its players to (default: every other active region)")
	_ = failover.MarkFlagRequired("from")
	var region string
	restore := &cobra.Command{
		Use:   "restore",
		Short: "End a region's failover",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, events.RegionOp{Op: events.RegionOpRestore, Region: region})
		},
	}
	restore.Flags().StringVar(&region, "region", "", "region to restore (required)")
	_ = restore.MarkFlagRequired("region")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show every region's state",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return send(cmd, events.RegionOp{Op: events.RegionOpStatus})
		},
	}
	root.AddCommand(failover, restore, status)
	return root
}

// regionRequest sends op to the global layer and returns its reply; a
// refused operation is an error carrying the reason.
func regionRequest(nc *nats.Conn, op events.RegionOp) (events.RegionOpReply, error) {
	b, _ := json.Marshal(op)
	m, err := nc.Request(events.RegionOpsSubject, b, 10*time.Second)
	if err != nil {
		return events.RegionOpReply{}, fmt.Errorf("region %s: %w (is the global layer running?)", op.Op, err)
	}
	var reply events.RegionOpReply
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		return reply, fmt.Errorf("region %s: malformed reply: %w", op.Op, err)
	}
	if reply.Error != "" {
		return reply, fmt.Errorf("region %s: %s", op.Op, reply.Error)
	}
	return reply, nil
}

func printRegions(w io.Writer, regions []events.RegionState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tSTATE\tTO\tCELLS")
	for _, r := range regions {
		to := r.To
		if to == "" {
			to = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Region, r.State, to, strings.Join(r.Cells, ","))
	}
	_ = tw.Flush()
}
