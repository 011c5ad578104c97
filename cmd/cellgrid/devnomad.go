package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/cellgrid/cellgrid/devstack"
)

// runDevNomad is `cellgrid dev --nomad`: the stack as Nomad jobs on local
// Nomad and Consul agents, until ctx ends (Ctrl-C stops jobs and agents).
func runDevNomad(ctx context.Context, out io.Writer, cfg devstack.Config, exe string, log *slog.Logger) error {
	st, err := devstack.StartNomad(ctx, devstack.NomadConfig{Config: cfg, Binary: exe}, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "global  %s\n", st.GlobalURL)
	for _, c := range st.Cells {
		fmt.Fprintf(out, "cell    %-12s %s  relay %s\n", c.ID, c.API, c.Relay)
	}
	fmt.Fprintf(out, "nats    %s\n", st.NATSURL())
	fmt.Fprintf(out, "nomad   %s\n", st.NomadURL)
	fmt.Fprintf(out, "consul  %s\n", st.ConsulURL)
	fmt.Fprintln(out, "Ctrl-C stops the jobs and the agents.")
	return st.Run(ctx)
}
