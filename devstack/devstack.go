package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/global/ops"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/localserver"
	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/internal/natsembed"
	"github.com/cellgrid/cellgrid/internal/redisclient"
	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/topology"
)

// DefaultCells are the cells `cellgrid dev` starts.
var DefaultCells = []string{"eu-west-1", "us-east-1", "ap-south-1"}

// Config configures a dev stack.
type Config struct {
	// DataDir holds PostgreSQL, Redis and JetStream data; reused on restart.
	DataDir string
	// Cells are the cell ids; DefaultCells when empty.
	Cells []string
	// GlobalAddr is the global layer's listen address ("127.0.0.1:0" = free).
	GlobalAddr string
	// GlobalOpsAddr is the global layer's ops listener (/metrics, detailed
	// /readyz); default "127.0.0.1:0" (free). Cells' ops listeners are on
	// 127.0.0.1:CellOpsBasePort+i, or free ports when it is 0.
	GlobalOpsAddr   string
	CellOpsBasePort int
	// DatabaseURL, when set, is used instead of starting PostgreSQL (tests).
	DatabaseURL string
	// Ephemeral runs PostgreSQL without fsync and Redis without persistence.
	Ephemeral bool
	// CellBasePort, when set, puts cell i's API on 127.0.0.1:CellBasePort+i;
	// otherwise on free ports.
	CellBasePort int
	// DGSCommand runs a dedicated game server (e.g. ["/path/cellgrid", "dgs"]);
	// the launcher appends --cell --id --nats --addr --version. DGSArgs are
	// extra flags (e.g. a short --time-limit) and DGSEnv extra environment.
	DGSCommand []string
	DGSArgs    []string
	DGSEnv     []string
	// MatchTimeLimit is every DGS's match length (--time-limit); 0 means
	// DefaultMatchTimeLimit, negative the DGS's own (production) default.
	// A --time-limit in DGSArgs wins.
	MatchTimeLimit time.Duration
	// DGSOutput receives the DGS processes' output; nil discards it.
	DGSOutput io.Writer
	// FleetBuffer is the warm pool per cell (default 4: the README's 8-bot
	// demo meets in one cell as 4 duels, none waiting for a cold start),
	// FleetMax its cap (8).
	FleetBuffer, FleetMax int
	// WAN, when set, puts the player and the regions at emulated distances
	// (wan.go); nil is plain loopback.
	WAN *WAN
	// Auth is the login configuration. Device (guest) login is always on in
	// a dev stack; a missing EncryptionKey is generated once and kept in
	// DataDir.
	Auth auth.Config
	// AdminDevices are guest device ids that hold the admin role on the
	// /ops console and API (a dev stack's way to have an admin without an
	// identity provider).
	AdminDevices []string
}

// Stack is a running dev stack.
type Stack struct {
	GlobalURL string
	Cells     []topology.Cell
	// OpsURLs are the ops listeners' URLs (/metrics, detailed /readyz):
	// "global" and each cell id.
	OpsURLs map[string]string

	global  *global.Server
	pool    *pgxpool.Pool
	nats    *natsembed.SuperCluster
	opsCred string    // path of the ops credential file
	wan     *wanLayer // nil without Config.WAN
	stops   cellStops // per-cell stop, for drills (drill.go)
	log     *slog.Logger
	closers []func() // in start order; closed in reverse
	group   supervise.Group
}

// Start brings everything up. Call Run to serve and Close (or cancel Run's
// context) to stop; on error everything started so far is stopped.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Stack, err error) {
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Cells) == 0 {
		cfg.Cells = DefaultCells
	}
	if cfg.DataDir == "" {
		cfg.DataDir = ".cellgrid"
	}
	if cfg.FleetBuffer <= 0 {
		cfg.FleetBuffer = 4
	}
	if cfg.FleetMax <= 0 {
		cfg.FleetMax = 8
	}
	if cfg.GlobalAddr == "" {
		cfg.GlobalAddr = "127.0.0.1:0"
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	st := &Stack{log: log}
	if cfg.WAN != nil {
		st.wan = newWANLayer(cfg.WAN)
	}
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
	st.closers = append(st.closers, pool.Close)
	st.pool = pool
	if v, err := db.Migrate(ctx, pool); err != nil {
		return nil, err
	} else {
		log.Info("schema migrated", "version", v)
	}

	sc, opsCreds, err := st.startSuperCluster(ctx, cfg.DataDir, append([]string{"global"}, cfg.Cells...))
	if err != nil {
		return nil, err
	}
	st.opsCred = opsCreds
	st.closers = append(st.closers, sc.Shutdown)
	st.nats = sc

	redisFor := func(name string) (rueidis.Client, error) {
		r, err := localserver.StartRedis(ctx, localserver.RedisConfig{Dir: filepath.Join(cfg.DataDir, "redis-"+name), Persist: !cfg.Ephemeral})
		if err != nil {
			return nil, err
		}
		st.closers = append(st.closers, func() { _ = r.Close() })
		c, err := redisclient.New(redisclient.Config{Addr: r.Addr()})
		if err != nil {
			return nil, err
		}
		st.closers = append(st.closers, c.Close)
		return c, nil
	}
	// Every component connects with its own role's credential.
	natsFor := func(cluster string) (*nats.Conn, error) {
		role := natsauth.Global()
		if cluster != "global" {
			role = natsauth.Cell(cluster)
		}
		nc, err := connectAs(sc, cluster, role)
		if err != nil {
			return nil, err
		}
		st.closers = append(st.closers, nc.Close)
		return nc, nil
	}

	topo := topology.NewRegistry()
	gRedis, err := redisFor("global")
	if err != nil {
		return nil, err
	}
	gNATS, err := natsFor("global")
	if err != nil {
		return nil, err
	}
	cfg.Auth.AllowDeviceLogin = true
	if cfg.Auth.RateLimits.PerSource == (auth.RateLimit{}) {
		// Every dev client (bots, e2e players) comes from loopback: one
		// source. The per-identity limits stay at their defaults.
		cfg.Auth.RateLimits.PerSource = auth.RateLimit{Rate: 10000, Burst: 10000}
	}
	if cfg.Auth.EncryptionKey == nil {
		if cfg.Auth.EncryptionKey, err = loadOrCreateKey(filepath.Join(cfg.DataDir, "encryption.key")); err != nil {
			return nil, err
		}
	}
	gcfg := DevGlobal()
	gcfg.Addr, gcfg.OpsAddr, gcfg.Cells, gcfg.Auth = cfg.GlobalAddr, cfg.GlobalOpsAddr, cfg.Cells, cfg.Auth
	for _, d := range cfg.AdminDevices {
		gcfg.Ops.Admins.Identities = append(gcfg.Ops.Admins.Identities, ops.Identity{Issuer: "device", Subject: d})
	}
	g, err := global.New(gcfg, global.Deps{
		DB: pool, Redis: gRedis, NATS: gNATS, Topology: topo, Log: log, // each part adds its component
	})
	if err != nil {
		return nil, err
	}
	st.GlobalURL = g.URL()
	st.OpsURLs = map[string]string{"global": g.OpsURL()}
	st.global = g
	st.closers = append(st.closers, func() { _ = g.Close() })
	st.group.Add("global", g.Run)

	if err := st.startCells(ctx, cfg, pool, topo, redisFor, natsFor); err != nil {
		return nil, err
	}
	st.Cells = topo.Cells()
	return st, nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	admin, err := db.Open(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("check database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Run serves every component until ctx is cancelled or one of them
// fails (which stops the others and is returned, joined with any other
// failure), then stops the servers Start started.
func (st *Stack) Run(ctx context.Context) error {
	err := st.group.Run(ctx)
	st.Close()
	return err
}

// Close stops the servers started by Start, in reverse order. Safe twice.
func (st *Stack) Close() {
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
}

// ClusterNATSURL is the client URL of a cluster's server.
func (st *Stack) ClusterNATSURL(cluster string) string { return st.nats.Server(cluster).ClientURL() }

// NATSURL is the client URL of the global layer's NATS server; any server
// of the supercluster reaches every cell (e.g. for `cellgrid cell drain`).
func (st *Stack) NATSURL() string { return st.ClusterNATSURL("global") }

// DB is the stack's database pool (whole-system tests read what the stack
// wrote).
func (st *Stack) DB() *pgxpool.Pool { return st.pool }

// Global is the stack's global layer.
func (st *Stack) Global() *global.Server { return st.global }

// databaseURL is url, or when it is empty the URL of a private PostgreSQL
// started in dataDir/postgres (its stop appended to closers) with the
// cellgrid database created.
func databaseURL(ctx context.Context, url, dataDir string, ephemeral bool, closers *[]func(), log *slog.Logger) (string, error) {
	if url != "" {
		return url, nil
	}
	pg, err := localserver.StartPostgres(ctx, localserver.PostgresConfig{Dir: filepath.Join(dataDir, "postgres"), NoFsync: ephemeral})
	if err != nil {
		return "", err
	}
	*closers = append(*closers, func() { _ = pg.Close() })
	if err := ensureDatabase(ctx, pg.URL("postgres"), "cellgrid"); err != nil {
		return "", err
	}
	url = pg.URL("cellgrid")
	log.Info("postgres started", "url", url)
	return url, nil
}
