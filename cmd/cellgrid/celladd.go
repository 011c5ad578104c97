package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	nomad "github.com/hashicorp/nomad/api"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/cellgrid/cellgrid/jobs"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// cellAddFlags are the flags of `cellgrid cell add`.
type cellAddFlags struct {
	id, region, nomadAddr, nomadRegion, consulAddr    string
	binary, checksum, driver, launcher, connectKey    string
	db, redis, natsURL, globalURL                     string
	datacenters, dgsArgs                              []string
	relayPort, httpPort, fleetMin, fleetMax, fleetBuf int
	timeout                                           time.Duration
}

func nomadClient(addr, region string) (*nomad.Client, error) {
	cfg := nomad.DefaultConfig()
	cfg.Address = addr
	cfg.Region = region
	c, err := nomad.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client %s: %w", addr, err)
	}
	return c, nil
}

// cellAddCmd is `cellgrid cell add`: register a cell's Nomad jobs (its DGS
// job, with --launcher nomad, and its cell job), then wait until the cell
// answers /readyz and the global layer's /topology lists it healthy.
func cellAddCmd(rf *rootFlags) *cobra.Command {
	var af cellAddFlags
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Register a cell's Nomad jobs and wait until it is ready and in /topology",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := rf.logger(); err != nil {
				return err
			}
			if af.db == "" {
				return errNoDB
			}
			return cellAdd(cmd.Context(), cmd.OutOrStdout(), af)
		},
	}
	f := cmd.Flags()
	f.StringVar(&af.id, "id", "", "cell id, e.g. eu-west-1 (required)")
	f.StringVar(&af.region, "region", "", "region of the cell, also its Nomad region unless --nomad-region (required)")
	f.StringVar(&af.nomadAddr, "nomad", envOr("NOMAD_ADDR", "http://127.0.0.1:4646"), "Nomad HTTP address; env NOMAD_ADDR")
	f.StringVar(&af.nomadRegion, "nomad-region", "", "Nomad region to register in (default: the agent's)")
	f.StringSliceVar(&af.datacenters, "datacenter", nil, "Nomad datacenters (default dc1)")
	f.StringVar(&af.consulAddr, "consul", "", "Consul agent host:port the cell registers itself with (empty: Nomad registers the job's service)")
	f.StringVar(&af.binary, "binary", "", "cellgrid binary: URL (fetched as a Nomad artifact) or absolute path on the clients (required)")
	f.StringVar(&af.checksum, "binary-checksum", "", "go-getter checksum of the binary URL, e.g. sha256:…")
	f.StringVar(&af.driver, "driver", "raw_exec", "task driver: raw_exec or exec")
	f.StringVar(&af.launcher, "launcher", "nomad", "how the cell starts DGSs: nomad (dispatches of cellgrid-dgs-<id>) or local")
	f.StringVar(&af.db, "db", envOr("CELLGRID_DB", ""), "database URL, set as CELLGRID_DB in the job; env CELLGRID_DB")
	f.StringVar(&af.redis, "redis", envOr("CELLGRID_REDIS", "127.0.0.1:6379"), "the cell's Redis host:port; env CELLGRID_REDIS")
	f.StringVar(&af.natsURL, "nats", envOr("CELLGRID_NATS", "nats://127.0.0.1:4222"), "the cell's NATS URL (its DGSs use it too); env CELLGRID_NATS")
	f.StringVar(&af.globalURL, "global", "http://127.0.0.1:8080", "global layer URL: token issuer, and whose /topology must list the cell")
	f.StringVar(&af.connectKey, "connect-key", envOr("CELLGRID_CONNECT_KEY", ""), "64 hex chars: the cell's connect-token seed, set as CELLGRID_CONNECT_KEY in the job")
	f.StringArrayVar(&af.dgsArgs, "dgs-arg", nil, "extra argument for every DGS (repeatable)")
	f.IntVar(&af.relayPort, "relay-port", 0, "static UDP relay port (0: dynamic)")
	f.IntVar(&af.httpPort, "http-port", 0, "static cell API port (0: dynamic)")
	f.IntVar(&af.fleetMin, "fleet-min", 0, "minimum DGS servers (0: the cell's default)")
	f.IntVar(&af.fleetMax, "fleet-max", 0, "maximum DGS servers (0: the cell's default)")
	f.IntVar(&af.fleetBuf, "fleet-buffer", 0, "Ready servers kept warm (0: the cell's default)")
	f.DurationVar(&af.timeout, "timeout", 2*time.Minute, "how long to wait for the cell to be ready and routable")
	for _, req := range []string{"id", "region", "binary"} {
		_ = cmd.MarkFlagRequired(req)
	}
	return cmd
}

func cellAdd(ctx context.Context, out io.Writer, af cellAddFlags) error {
	start := time.Now()
	client, err := nomadClient(af.nomadAddr, af.nomadRegion)
	if err != nil {
		return err
	}
	region := af.nomadRegion
	if region == "" {
		if region, err = client.Agent().Region(); err != nil {
			return fmt.Errorf("cell add: nomad region: %w", err)
		}
	}
	common := jobs.Common{Region: region, Datacenters: af.datacenters, Driver: af.driver,
		Binary: jobs.Binary{Source: af.binary, Checksum: af.checksum}}
	if af.connectKey != "" {
		common.Env = map[string]string{"CELLGRID_CONNECT_KEY": af.connectKey}
	}
	var toRegister []*nomad.Job
	if af.launcher == "nomad" {
		dj, err := jobs.DGSJob(jobs.DGSSpec{Common: common, JobID: jobs.DGSJobID(af.id), NATSURL: af.natsURL, ExtraArgs: af.dgsArgs})
		if err != nil {
			return err
		}
		toRegister = append(toRegister, dj)
	}
	spec := jobs.CellSpec{Common: common, CellID: af.id, CellRegion: af.region, DBURL: af.db, RedisAddr: af.redis, NATSURL: af.natsURL,
		GlobalURL: af.globalURL, HTTPPort: af.httpPort, RelayPort: af.relayPort,
		FleetMin: af.fleetMin, FleetMax: af.fleetMax, FleetBuffer: af.fleetBuf,
		Launcher: af.launcher, NomadAddr: af.nomadAddr, NomadRegion: af.nomadRegion, ConsulAddr: af.consulAddr}
	if af.launcher != "nomad" {
		spec.DGSArgs = af.dgsArgs
	}
	cj, err := jobs.CellJob(spec)
	if err != nil {
		return err
	}
	toRegister = append(toRegister, cj)
	for _, j := range toRegister {
		resp, _, err := client.Jobs().Register(j, (&nomad.WriteOptions{Region: region}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("cell add: register %s: %w", *j.ID, err)
		}
		if resp.EvalID == "" { // a parameterized job is only evaluated per dispatch
			fmt.Fprintf(out, "registered %s in %s (parameterized: the cell dispatches it)\n", *j.ID, region)
		} else {
			fmt.Fprintf(out, "registered %s in %s (eval %s)\n", *j.ID, region, resp.EvalID)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, af.timeout)
	defer cancel()
	c, err := waitRoutable(ctx, client, region, jobs.CellJobID(af.id), af.globalURL, af.id)
	if err != nil {
		return fmt.Errorf("cell add %s: %w", af.id, err)
	}
	fmt.Fprintf(out, "cell %s ready in %s: api %s relay %s (in %s/topology)\n",
		af.id, time.Since(start).Round(100*time.Millisecond), c.API, c.Relay, strings.TrimRight(af.globalURL, "/"))
	return nil
}

// waitRoutable polls until the global layer's /topology lists cell id
// healthy and the cell answers /readyz. A failed cell allocation ends the
// wait early with its task events.
func waitRoutable(ctx context.Context, client *nomad.Client, region, jobID, globalURL, id string) (topology.Cell, error) {
	var last error
	hc := &http.Client{Timeout: 3 * time.Second}
	for {
		if err := failedAlloc(ctx, client, region, jobID); err != nil {
			return topology.Cell{}, err
		}
		c, err := topologyCell(ctx, hc, globalURL, id)
		if err == nil && c.State == topology.StateHealthy {
			if err = readyz(ctx, hc, c.API); err == nil {
				return c, nil
			}
		} else if err == nil {
			err = fmt.Errorf("listed as %s", c.State)
		}
		last = err
		select {
		case <-ctx.Done():
			return topology.Cell{}, fmt.Errorf("not ready and routable: %v", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func failedAlloc(ctx context.Context, client *nomad.Client, region, jobID string) error {
	allocs, _, err := client.Jobs().Allocations(jobID, false, (&nomad.QueryOptions{Region: region}).WithContext(ctx))
	if err != nil {
		return nil // transient; the topology wait decides
	}
	for _, a := range allocs {
		if a.ClientStatus != nomad.AllocClientStatusFailed {
			continue
		}
		var evs []string
		for task, ts := range a.TaskStates {
			for _, ev := range ts.Events {
				evs = append(evs, task+": "+ev.Type+" "+ev.DisplayMessage)
			}
		}
		return fmt.Errorf("allocation %s failed: %s", a.ID, strings.Join(evs, "; "))
	}
	return nil
}

func topologyCell(ctx context.Context, hc *http.Client, globalURL, id string) (topology.Cell, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(globalURL, "/")+"/topology", nil)
	if err != nil {
		return topology.Cell{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return topology.Cell{}, err
	}
	defer resp.Body.Close()
	var doc topology.Document
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return topology.Cell{}, fmt.Errorf("/topology: %w", err)
	}
	for _, c := range doc.Cells {
		if c.ID == id {
			return c, nil
		}
	}
	return topology.Cell{}, errors.New("not in /topology yet")
}

func readyz(ctx context.Context, hc *http.Client, api string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s/readyz: %d %s", api, resp.StatusCode, b)
	}
	return nil
}

// cellRemoveCmd is `cellgrid cell remove`: drain the cell (no new
// tickets; the topology shows it draining), wait until none of its DGSs
// holds a match, then deregister its jobs. No running match is cut.
func cellRemoveCmd(rf *rootFlags) *cobra.Command {
	var id, nomadAddr, nomadRegion, natsURL string
	var quiet, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "remove",
		Short: "Drain a cell, wait for its matches to end, then deregister its Nomad jobs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := rf.logger(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return cellRemove(ctx, cmd.OutOrStdout(), id, nomadAddr, nomadRegion, natsURL, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "cell id (required)")
	f.StringVar(&nomadAddr, "nomad", envOr("NOMAD_ADDR", "http://127.0.0.1:4646"), "Nomad HTTP address; env NOMAD_ADDR")
	f.StringVar(&nomadRegion, "nomad-region", "", "Nomad region of the cell's jobs (default: the agent's)")
	f.StringVar(&natsURL, "nats", envOr("CELLGRID_NATS", "nats://127.0.0.1:4222"), "any NATS server of the supercluster; env CELLGRID_NATS")
	f.DurationVar(&quiet, "quiet-period", 3*time.Second, "how long no DGS of the cell may report a match before the jobs go")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "give up (leaving the cell drained) after this long")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func cellRemove(ctx context.Context, out io.Writer, id, nomadAddr, nomadRegion, natsURL string, quiet time.Duration) error {
	nc, err := nats.Connect(natsURL, nats.Name("cellgrid-ops"))
	if err != nil {
		return fmt.Errorf("cell remove: nats: %w", err)
	}
	defer nc.Close()
	// Subscribe before draining so no match report is missed.
	type dgs struct {
		state events.DGSState
		at    time.Time
	}
	health := make(chan events.DGSHealth, 256)
	sub, err := nc.Subscribe(events.DGSHealthSubject(id), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil && h.ID != "" {
			select {
			case health <- h:
			default:
			}
		}
	})
	if err != nil {
		return fmt.Errorf("cell remove: %w", err)
	}
	defer sub.Unsubscribe()
	msg, err := nc.RequestWithContext(ctx, events.CellDrainSubject(id), []byte("drain"))
	if err != nil {
		return fmt.Errorf("cell remove: drain %s: %w", id, err)
	}
	fmt.Fprintf(out, "cell %s: %s\n", id, msg.Data)

	servers := map[string]dgs{}
	quietSince := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastReported := -1
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cell remove %s: matches still running: %w (the cell stays drained)", id, ctx.Err())
		case h := <-health:
			servers[h.ID] = dgs{h.State, time.Now()}
		case now := <-tick.C:
			playing := 0
			for sid, s := range servers {
				if now.Sub(s.at) > quiet { // silent: gone
					delete(servers, sid)
					continue
				}
				if s.state == events.DGSAllocated {
					playing++
				}
			}
			if playing != lastReported {
				fmt.Fprintf(out, "cell %s: %d matches running\n", id, playing)
				lastReported = playing
			}
			if playing > 0 {
				quietSince = now
			}
			if now.Sub(quietSince) < quiet {
				continue
			}
			return deregisterCell(ctx, out, id, nomadAddr, nomadRegion)
		}
	}
}

func deregisterCell(ctx context.Context, out io.Writer, id, nomadAddr, nomadRegion string) error {
	client, err := nomadClient(nomadAddr, nomadRegion)
	if err != nil {
		return err
	}
	wo := (&nomad.WriteOptions{Region: nomadRegion}).WithContext(ctx)
	// The cell first: it stops its own fleet (Ready servers only remain).
	for _, jobID := range []string{jobs.CellJobID(id), jobs.DGSJobID(id)} {
		_, _, err := client.Jobs().Deregister(jobID, false, wo)
		var ue nomad.UnexpectedResponseError
		if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
			continue
		}
		if err != nil {
			return fmt.Errorf("cell remove: deregister %s: %w", jobID, err)
		}
		fmt.Fprintf(out, "deregistered %s\n", jobID)
	}
	// Dispatches of the DGS job are jobs of their own.
	list, _, err := client.Jobs().PrefixList(jobs.DGSJobID(id) + "/")
	if err != nil {
		return fmt.Errorf("cell remove: list dispatches: %w", err)
	}
	n := 0
	for _, j := range list {
		if j.Status == "dead" {
			continue
		}
		if _, _, err := client.Jobs().Deregister(j.ID, false, wo); err != nil {
			return fmt.Errorf("cell remove: deregister %s: %w", j.ID, err)
		}
		n++
	}
	fmt.Fprintf(out, "cell %s removed (%d leftover DGS dispatches stopped)\n", id, n)
	return nil
}
