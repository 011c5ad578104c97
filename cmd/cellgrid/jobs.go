package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cellgrid/cellgrid/jobs"
	"github.com/hashicorp/nomad/api"
	"github.com/spf13/cobra"
)

// jobFlags are the flags of `jobs render` and `jobs register`.
type jobFlags struct {
	kind, cell, binary, checksum, driver, namespace string
	regions, datacenters, cells                     []string
	db, redis, nats, global, publicURL, jobID       string
	cpu, mem, httpPort, relayPort, count            int
}

func (jf *jobFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&jf.kind, "kind", "", "job kind: cell, global or dgs (required)")
	f.StringSliceVar(&jf.regions, "region", nil, "Nomad region (repeatable for register: one job per region; required)")
	f.StringSliceVar(&jf.datacenters, "datacenter", nil, "datacenters (default dc1)")
	f.StringVar(&jf.namespace, "namespace", "", "Nomad namespace")
	f.StringVar(&jf.cell, "cell", "", "cell id (kind cell)")
	f.StringVar(&jf.binary, "binary", "", "cellgrid binary: URL (fetched as an artifact) or absolute path on the clients (required)")
	f.StringVar(&jf.checksum, "binary-checksum", "", "go-getter checksum of the binary URL, e.g. sha256:…")
	f.StringVar(&jf.driver, "driver", "raw_exec", "task driver: raw_exec or exec")
	f.StringVar(&jf.db, "db", "", "database URL (cell, global); set as CELLGRID_DB in the job")
	f.StringVar(&jf.redis, "redis", "", "Redis host:port (cell, global)")
	f.StringVar(&jf.nats, "nats", "", "NATS URL")
	f.StringVar(&jf.global, "global", "", "global layer URL (cell)")
	f.StringVar(&jf.publicURL, "public-url", "", "public URL of the global layer (global)")
	f.StringSliceVar(&jf.cells, "cells", nil, "cells the global layer sources from the start (global; optional, later cells are sourced as they appear)")
	f.StringVar(&jf.jobID, "job-id", "", "job id (global, dgs)")
	f.IntVar(&jf.cpu, "cpu", 0, "CPU MHz per task (0: default)")
	f.IntVar(&jf.mem, "memory", 0, "memory MB per task (0: default)")
	f.IntVar(&jf.httpPort, "http-port", 0, "static HTTP port (0: dynamic)")
	f.IntVar(&jf.relayPort, "relay-port", 7777, "static UDP relay port of a cell (0: dynamic)")
	f.IntVar(&jf.count, "count", 1, "task group count (cell, global)")
	_ = cmd.MarkFlagRequired("kind")
	_ = cmd.MarkFlagRequired("region")
	_ = cmd.MarkFlagRequired("binary")
}

func (jf *jobFlags) build(region string) (*api.Job, error) {
	c := jobs.Common{Region: region, Datacenters: jf.datacenters, Namespace: jf.namespace, Driver: jf.driver,
		Binary: jobs.Binary{Source: jf.binary, Checksum: jf.checksum}, Resources: jobs.Resources{CPU: jf.cpu, MemoryMB: jf.mem}}
	switch jf.kind {
	case "cell":
		return jobs.CellJob(jobs.CellSpec{Common: c, CellID: jf.cell, DBURL: jf.db, RedisAddr: jf.redis, NATSURL: jf.nats,
			GlobalURL: jf.global, HTTPPort: jf.httpPort, RelayPort: jf.relayPort, Count: jf.count})
	case "global":
		return jobs.GlobalJob(jobs.GlobalSpec{Common: c, DBURL: jf.db, RedisAddr: jf.redis, NATSURL: jf.nats,
			PublicURL: jf.publicURL, Cells: jf.cells, HTTPPort: jf.httpPort, Count: jf.count, JobID: jf.jobID})
	case "dgs":
		return jobs.DGSJob(jobs.DGSSpec{Common: c, JobID: jf.jobID, NATSURL: jf.nats})
	}
	return nil, fmt.Errorf("--kind %q: want cell, global or dgs", jf.kind)
}

func jobsCmd(_ *rootFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "Nomad job definitions: render them or register them"}

	var rjf jobFlags
	render := &cobra.Command{
		Use:   "render",
		Short: "Print one job as JSON for `nomad job run -json` ({\"Job\": …})",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(rjf.regions) != 1 {
				return fmt.Errorf("render takes exactly one --region (Multiregion is Enterprise-only: one job per region)")
			}
			j, err := rjf.build(rjf.regions[0])
			if err != nil {
				return err
			}
			j.Canonicalize()
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]*api.Job{"Job": j})
		},
	}
	rjf.register(render)

	var gjf jobFlags
	var nomadAddr, token string
	register := &cobra.Command{
		Use:   "register",
		Short: "Register the job in every --region through the Nomad API",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := api.DefaultConfig()
			if nomadAddr != "" {
				cfg.Address = nomadAddr
			}
			if token != "" {
				cfg.SecretID = token
			}
			client, err := api.NewClient(cfg)
			if err != nil {
				return err
			}
			for _, region := range gjf.regions {
				j, err := gjf.build(region)
				if err != nil {
					return err
				}
				wo := (&api.WriteOptions{Region: region, Namespace: gjf.namespace}).WithContext(cmd.Context())
				resp, _, err := client.Jobs().Register(j, wo)
				if err != nil {
					return fmt.Errorf("register %s in %s: %w", *j.ID, region, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "registered %s in %s eval %s", *j.ID, region, resp.EvalID)
				if resp.Warnings != "" {
					fmt.Fprintf(cmd.OutOrStdout(), " warnings: %s", strings.TrimSpace(resp.Warnings))
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			return nil
		},
	}
	gjf.register(register)
	register.Flags().StringVar(&nomadAddr, "nomad", envOr("NOMAD_ADDR", "http://127.0.0.1:4646"), "Nomad HTTP address; env NOMAD_ADDR")
	register.Flags().StringVar(&token, "nomad-token", envOr("NOMAD_TOKEN", ""), "Nomad ACL token; env NOMAD_TOKEN")

	cmd.AddCommand(render, register)
	return cmd
}
