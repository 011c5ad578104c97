package devstack

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/cell"
	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/topology"
)

// startCells builds every cell with its own Redis, NATS connection (to its
// own cluster), relay and local DGS launcher, and registers it in topo.
func (st *Stack) startCells(ctx context.Context, cfg Config, pool *pgxpool.Pool, topo *topology.Registry,
	redisFor func(string) (rueidis.Client, error), natsFor func(string) (*nats.Conn, error)) error {
	if len(cfg.DGSCommand) == 0 {
		return fmt.Errorf("devstack: DGSCommand is required to run cells")
	}
	// Cells verify access tokens locally from the global layer's JWKS.
	kctx, cancel := context.WithCancel(context.Background())
	st.closers = append(st.closers, cancel)
	verifier := accesstoken.NewRemoteVerifier(kctx, st.global.Issuer(), st.global.JWKSURL())
	for i, id := range cfg.Cells {
		rc, err := redisFor(id)
		if err != nil {
			return err
		}
		nc, err := natsFor(id)
		if err != nil {
			return err
		}
		seed, err := loadOrCreateKey(filepath.Join(cfg.DataDir, "connect-"+id+".key"))
		if err != nil {
			return err
		}
		cc := cell.DefaultConfig()
		cc.ID, cc.Region, cc.ConnectKeySeed = id, id, seed
		if cfg.CellBasePort > 0 {
			cc.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.CellBasePort+i))
		}
		if cfg.CellOpsBasePort > 0 {
			cc.OpsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.CellOpsBasePort+i))
		}
		// Every dev player shares the loopback address: a per-IP HELLO
		// limit would throttle a swarm of bots as one source.
		cc.Relay.HelloPerIP = -1
		cc.DGS = fleet.Version{Name: "dev", Command: cfg.DGSCommand[0], Args: cfg.dgsArgs()}
		cc.Fleet.Min, cc.Fleet.Buffer, cc.Fleet.Max = cfg.FleetBuffer, cfg.FleetBuffer, cfg.FleetMax
		wanConn, wanAddr, err := st.wanRelaySocket(id)
		if err != nil {
			return err
		}
		cc.RelayPublicAddr = wanAddr
		cc.GameModes = st.wanModes(cc.GameModes)
		c, err := cell.New(cc, cell.Deps{
			DB: pool, Redis: rc, NATS: nc, Verifier: verifier,
			Launcher: &fleet.LocalLauncher{Env: cfg.DGSEnv, Output: cfg.DGSOutput},
			Log:      st.log, // cell.New adds cell=<id>; its parts add their component
		})
		if err != nil {
			if wanConn != nil {
				_ = wanConn.Close()
			}
			return fmt.Errorf("devstack: cell %s: %w", id, err)
		}
		st.closers = append(st.closers, func() { _ = c.Close() })
		st.OpsURLs[id] = c.OpsURL()
		if err := st.attachWANLink(id, wanConn, c.RelayListenAddr()); err != nil {
			return err
		}
		st.group.Add("cell "+id, st.stoppableCell(id, c.Run))
		topo.Put(topology.Cell{ID: id, Region: id, API: c.URL(), Relay: c.RelayAddr(), Beacon: c.RelayAddr()})
	}
	return nil
}
