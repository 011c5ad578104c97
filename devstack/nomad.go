package devstack

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	nomad "github.com/hashicorp/nomad/api"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/localserver"
	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/internal/natsembed"
	"github.com/cellgrid/cellgrid/jobs"
	"github.com/cellgrid/cellgrid/topology"
)

// NomadStack is the production topology on one machine (`cellgrid dev
// --nomad`): local Nomad and Consul dev agents run the global layer and
// every cell as Nomad jobs of the same cellgrid binary, the cells launch
// their DGSs as dispatches of their parameterized DGS jobs, and every
// process registers itself in Consul, where the global layer finds the
// cells. PostgreSQL, one redis-server per component and the NATS
// supercluster run in (or under) this process, as in Start.
type NomadStack struct {
	GlobalURL string
	Cells     []topology.Cell
	NomadURL  string
	ConsulURL string

	nats    *natsembed.SuperCluster
	nomad   *localserver.Nomad
	jobIDs  []string
	log     *slog.Logger
	closers []func()
}

// NomadConfig adds to Config what the Nomad variant needs.
type NomadConfig struct {
	Config
	// Binary is the absolute path of the cellgrid executable Nomad runs
	// (raw_exec on the local dev agent).
	Binary string
	// ReadyTimeout bounds the wait for every job to be ready; default 2m.
	ReadyTimeout time.Duration
}

// StartNomad brings the stack up on local Nomad and Consul agents and
// returns once the global layer answers and /topology lists every cell
// healthy. On error everything started so far is stopped.
func StartNomad(ctx context.Context, cfg NomadConfig, log *slog.Logger) (_ *NomadStack, err error) {
	if log == nil {
		log = slog.Default()
	}
	if !filepath.IsAbs(cfg.Binary) {
		return nil, fmt.Errorf("devstack nomad: binary %q must be an absolute path", cfg.Binary)
	}
	if len(cfg.Cells) == 0 {
		cfg.Cells = DefaultCells
	}
	if cfg.DataDir == "" {
		cfg.DataDir = ".cellgrid"
	}
	if cfg.FleetBuffer <= 0 {
		cfg.FleetBuffer = 2
	}
	if cfg.FleetMax <= 0 {
		cfg.FleetMax = 8
	}
	if cfg.GlobalAddr == "" {
		cfg.GlobalAddr = "127.0.0.1:0"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Minute
	}
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}
	st := &NomadStack{log: log}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()

	dbURL, err := databaseURL(ctx, cfg.DatabaseURL, cfg.DataDir, cfg.Ephemeral, &st.closers, log)
	if err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	_, err = db.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return nil, err
	}

	sc, _, err := startNATS(ctx, cfg.DataDir, append([]string{"global"}, cfg.Cells...), log, nil)
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, sc.Shutdown)
	st.nats = sc
	redisFor := func(name string) (string, error) {
		r, err := localserver.StartRedis(ctx, localserver.RedisConfig{Dir: filepath.Join(cfg.DataDir, "redis-"+name), Persist: !cfg.Ephemeral})
		if err != nil {
			return "", err
		}
		st.closers = append(st.closers, func() { _ = r.Close() })
		return r.Addr(), nil
	}

	cons, err := localserver.StartConsul(ctx, localserver.ConsulConfig{Dir: filepath.Join(cfg.DataDir, "consul")})
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, cons.Stop)
	st.ConsulURL = cons.URL()
	nmd, err := localserver.StartNomad(ctx, localserver.NomadConfig{Dir: filepath.Join(cfg.DataDir, "nomad"), ConsulAddr: cons.Addr})
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, st.stopJobs, nmd.Stop) // jobs go before the agent
	st.nomad, st.NomadURL = nmd, nmd.Addr
	log.Info("nomad and consul agents started", "nomad", nmd.Addr, "consul", cons.URL())

	if cfg.Auth.EncryptionKey == nil {
		if cfg.Auth.EncryptionKey, err = loadOrCreateKey(filepath.Join(cfg.DataDir, "encryption.key")); err != nil {
			return nil, err
		}
	}
	_, gport, err := net.SplitHostPort(cfg.GlobalAddr)
	if err != nil {
		return nil, fmt.Errorf("devstack nomad: global addr %q: %w", cfg.GlobalAddr, err)
	}
	httpPort, _ := strconv.Atoi(gport)
	if httpPort == 0 {
		ports, err := localserver.FreePorts(1)
		if err != nil {
			return nil, err
		}
		httpPort = ports[0]
	}
	gRedis, err := redisFor("global")
	if err != nil {
		return nil, err
	}
	common := jobs.Common{Region: nmd.Region, Binary: jobs.Binary{Source: cfg.Binary}}
	gcommon := common
	gcreds, err := roleCredsText(sc, natsauth.Global())
	if err != nil {
		return nil, err
	}
	// Dev only: a job's environment is readable through the Nomad API; in
	// production deliver credentials with a template from Vault or Nomad
	// Variables (README, Trust).
	gcommon.Env = map[string]string{"CELLGRID_ENCRYPTION_KEY": hex.EncodeToString(cfg.Auth.EncryptionKey), "CELLGRID_NATS_CREDS": gcreds}
	st.GlobalURL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	gargs := []string{"--allow-device-login", "--dev-game-config"}
	for _, d := range cfg.AdminDevices {
		gargs = append(gargs, "--ops-admin=device|"+d)
	}
	gjob, err := jobs.GlobalJob(jobs.GlobalSpec{Common: gcommon, DBURL: dbURL, RedisAddr: gRedis, NATSURL: sc.Server("global").ClientURL(),
		PublicURL: st.GlobalURL, Cells: cfg.Cells, HTTPPort: httpPort, ConsulAddr: cons.Addr,
		ExtraArgs: gargs})
	if err != nil {
		return nil, err
	}
	toRegister := []*nomad.Job{gjob}
	for i, id := range cfg.Cells {
		redis, err := redisFor(id)
		if err != nil {
			return nil, err
		}
		seed, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "connect-"+id+".key"))
		if err != nil {
			return nil, err
		}
		natsURL := sc.Server(id).ClientURL()
		// The DGS job adds the dgs subcommand itself: only the flags.
		flags := (&Config{DGSCommand: []string{""}, MatchTimeLimit: cfg.MatchTimeLimit, DGSArgs: cfg.DGSArgs}).dgsArgs()
		dj, err := jobs.DGSJob(jobs.DGSSpec{Common: common, JobID: jobs.DGSJobID(id), NATSURL: natsURL, ExtraArgs: flags, NATSCreds: true})
		if err != nil {
			return nil, err
		}
		ccommon := common
		ccreds, err := roleCredsText(sc, natsauth.Cell(id))
		if err != nil {
			return nil, err
		}
		signer, err := sc.Trust.DGSIssuer(id)
		if err != nil {
			return nil, err
		}
		signerJSON, _ := json.Marshal(signer)
		ccommon.Env = map[string]string{"CELLGRID_CONNECT_KEY": hex.EncodeToString(seed),
			"CELLGRID_NATS_CREDS": ccreds, "CELLGRID_DGS_SIGNER": string(signerJSON)}
		httpPort := 0
		if cfg.CellBasePort > 0 {
			httpPort = cfg.CellBasePort + i
		}
		cj, err := jobs.CellJob(jobs.CellSpec{Common: ccommon, CellID: id, CellRegion: id, DBURL: dbURL, RedisAddr: redis, NATSURL: natsURL,
			GlobalURL: st.GlobalURL, HTTPPort: httpPort, FleetMin: cfg.FleetBuffer, FleetBuffer: cfg.FleetBuffer, FleetMax: cfg.FleetMax,
			Launcher: "nomad", NomadAddr: nmd.Addr, ConsulAddr: cons.Addr})
		if err != nil {
			return nil, err
		}
		toRegister = append(toRegister, dj, cj)
	}
	for _, j := range toRegister {
		if _, _, err := nmd.Client.Jobs().Register(j, (&nomad.WriteOptions{}).WithContext(ctx)); err != nil {
			return nil, fmt.Errorf("devstack nomad: register %s: %w", *j.ID, err)
		}
		st.jobIDs = append(st.jobIDs, *j.ID)
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	if st.Cells, err = waitCellsHealthy(rctx, st.GlobalURL, cfg.Cells); err != nil {
		return nil, fmt.Errorf("devstack nomad: %w (nomad log: %s)", err, lastLine(nmd.Log()))
	}
	return st, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// waitCellsHealthy polls the global layer's /topology until every cell is
// listed healthy.
func waitCellsHealthy(ctx context.Context, globalURL string, ids []string) ([]topology.Cell, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		cells, err := fetchTopology(ctx, hc, globalURL)
		if err == nil {
			healthy := map[string]bool{}
			for _, c := range cells {
				healthy[c.ID] = c.State == topology.StateHealthy
			}
			var missing []string
			for _, id := range ids {
				if !healthy[id] {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 {
				return cells, nil
			}
			err = fmt.Errorf("cells not healthy yet: %v", missing)
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the cells: %v", last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func fetchTopology(ctx context.Context, hc *http.Client, globalURL string) ([]topology.Cell, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, globalURL+"/topology", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/topology: %s", resp.Status)
	}
	var doc topology.Document
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("/topology: %w", err)
	}
	return doc.Cells, nil
}

// Nomad is the local Nomad agent (tests inspect its jobs).
func (st *NomadStack) Nomad() *localserver.Nomad { return st.nomad }

// NATSURL is the global cluster's client URL (any server reaches every
// cell, e.g. for `cellgrid cell drain`).
func (st *NomadStack) NATSURL() string { return st.nats.Server("global").ClientURL() }

// Run waits until ctx ends, then stops everything (Close).
func (st *NomadStack) Run(ctx context.Context) error {
	<-ctx.Done()
	st.Close()
	return nil
}

// stopJobs deregisters the stack's jobs and every DGS dispatch, and waits
// (bounded) until their allocations ended, so the agent stops no running
// task and no process is left.
func (st *NomadStack) stopJobs() {
	if st.nomad == nil {
		return
	}
	c := st.nomad.Client
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wo := (&nomad.WriteOptions{}).WithContext(ctx)
	ids := append([]string(nil), st.jobIDs...)
	for _, id := range st.jobIDs {
		if strings.HasPrefix(id, jobs.DefaultDGSJobID) {
			list, _, _ := c.Jobs().PrefixList(id + "/")
			for _, j := range list {
				ids = append(ids, j.ID)
			}
		}
	}
	for _, id := range ids {
		if _, _, err := c.Jobs().Deregister(id, false, wo); err != nil {
			st.log.Warn("deregister", "job", id, "err", err)
		}
	}
	for ctx.Err() == nil {
		running := 0
		allocs, _, err := c.Allocations().List((&nomad.QueryOptions{}).WithContext(ctx))
		if err != nil {
			break
		}
		for _, a := range allocs {
			if a.ClientStatus == nomad.AllocClientStatusRunning || a.ClientStatus == nomad.AllocClientStatusPending {
				running++
			}
		}
		if running == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	st.log.Warn("some allocations still running when the nomad agent stops", "err", errors.New("timeout"))
}

// Close stops the jobs, the agents and the servers, in reverse start
// order. Safe twice.
func (st *NomadStack) Close() {
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
}
