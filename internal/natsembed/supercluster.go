package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"
)

// SuperCluster is a set of embedded servers, one per cluster, joined by
// gateways.
type SuperCluster struct {
	Servers []*Server
}

// StartSuperCluster starts one JetStream-enabled server per name, each its
// own cluster, all gatewayed to the first. storeRoot holds one store
// directory per cluster. It waits until every gateway is up and JetStream
// answers.
func StartSuperCluster(ctx context.Context, storeRoot string, names []string, log *slog.Logger) (*SuperCluster, error) {
	return StartSuperClusterFronted(ctx, storeRoot, names, nil, log)
}

// GatewayFront puts something (a WAN emulator) in front of a cluster's
// gateway listening at addr and returns the host:port other clusters
// must dial instead.
type GatewayFront func(cluster, addr string) (string, error)

// StartSuperClusterFronted is StartSuperCluster with every cluster's
// gateway reached through front (nil: directly). The fronted address is
// advertised, so discovered gateways go through it too.
func StartSuperClusterFronted(ctx context.Context, storeRoot string, names []string, front GatewayFront, log *slog.Logger) (*SuperCluster, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("supercluster: no clusters")
	}
	// Bound the waits below: a supercluster that has not formed in a minute
	// on loopback will not.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sc := &SuperCluster{}
	var seed map[string]string
	for _, name := range names {
		cfg := Config{
			Cluster:  name,
			StoreDir: filepath.Join(storeRoot, name),
			Gateways: seed,
			Tags:     []string{"cluster:" + name},
			// One cluster alone has nobody to gateway to.
			Standalone: len(names) == 1,
		}
		if front != nil && !cfg.Standalone {
			port, err := FreePort("127.0.0.1")
			if err != nil {
				sc.Shutdown()
				return nil, err
			}
			cfg.GatewayPort = port
			if cfg.GatewayAdvertise, err = front(name, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
				sc.Shutdown()
				return nil, fmt.Errorf("supercluster: gateway front of %s: %w", name, err)
			}
		}
		s, err := Start(cfg, log)
		if err != nil {
			sc.Shutdown()
			return nil, err
		}
		sc.Servers = append(sc.Servers, s)
		if seed == nil {
			gw := s.GatewayURL()
			if cfg.GatewayAdvertise != "" {
				gw = "nats://" + cfg.GatewayAdvertise
			}
			seed = map[string]string{name: gw}
		}
	}
	for _, s := range sc.Servers {
		if err := s.WaitGateways(ctx, len(names)-1); err != nil {
			sc.Shutdown()
			return nil, err
		}
	}
	nc, err := sc.Servers[0].Connect("supercluster-wait")
	if err != nil {
		sc.Shutdown()
		return nil, err
	}
	defer nc.Close()
	if err := WaitJetStream(ctx, nc); err != nil {
		sc.Shutdown()
		return nil, err
	}
	if len(names) > 1 {
		if err := sc.waitPeers(ctx); err != nil {
			sc.Shutdown()
			return nil, err
		}
	}
	for _, s := range sc.Servers {
		s.Settled()
	}
	return sc, nil
}

// waitPeers blocks until the JetStream meta leader has current stats from
// every server. Before that, a stream placed in a cluster the leader has not
// heard from yet fails with "no suitable peers for placement" (a dev stack
// lost its last cell that way on a loaded machine).
func (sc *SuperCluster) waitPeers(ctx context.Context) error {
	have := 0
	for {
		for _, s := range sc.Servers {
			if s.ns.JetStreamIsLeader() {
				have = len(s.ns.JetStreamClusterPeers())
				break
			}
		}
		if have >= len(sc.Servers) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d jetstream peers (the meta leader knows %d): %w", len(sc.Servers), have, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Server returns the server of the named cluster, or nil.
func (sc *SuperCluster) Server(cluster string) *Server {
	for _, s := range sc.Servers {
		if s.Cluster() == cluster {
			return s
		}
	}
	return nil
}

// Shutdown stops every server. All of them go quiet first: a server still
// running would otherwise log an error for each gateway that went away.
func (sc *SuperCluster) Shutdown() {
	for _, s := range sc.Servers {
		s.log.quiet.Store(true)
	}
	for _, s := range sc.Servers {
		s.Shutdown()
	}
}
