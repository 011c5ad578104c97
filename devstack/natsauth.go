package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/internal/natsembed"
)

// startNATS starts the supercluster with the keys kept in
// DataDir/nats/trust.json (created on first run: JetStream stores data per
// account, so the keys must survive a restart) and writes the ops
// credential `cellgrid cell drain` needs to DataDir/nats/ops.creds.
func startNATS(ctx context.Context, dataDir string, clusters []string, log *slog.Logger, front natsembed.GatewayFront) (*natsembed.SuperCluster, string, error) {
	dir := filepath.Join(dataDir, "nats")
	trust, err := natsauth.LoadOrCreateTrust(filepath.Join(dir, "trust.json"), clusters)
	if err != nil {
		return nil, "", err
	}
	sc, err := natsembed.StartSuperClusterWith(ctx, dir, clusters, log, natsembed.Options{Trust: trust, Front: front})
	if err != nil {
		return nil, "", err
	}
	ops, err := trust.Issue(natsauth.Ops(), 0)
	if err != nil {
		sc.Shutdown()
		return nil, "", err
	}
	b, err := ops.Format()
	if err != nil {
		sc.Shutdown()
		return nil, "", err
	}
	path := filepath.Join(dir, "ops.creds")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		sc.Shutdown()
		return nil, "", fmt.Errorf("devstack: ops credential: %w", err)
	}
	return sc, path, nil
}

// connectAs opens a connection to cluster's server with a fresh credential
// of role.
func connectAs(sc *natsembed.SuperCluster, cluster string, role natsauth.Role) (*nats.Conn, error) {
	creds, err := sc.Trust.Issue(role, 0)
	if err != nil {
		return nil, err
	}
	return sc.Server(cluster).ConnectAs("cellgrid-"+role.Name(), creds)
}

// OpsCredsFile is the ops credential (drain, undrain) of this stack.
func (st *Stack) OpsCredsFile() string { return st.opsCred }

// ConnectNATS opens an admin connection to cluster's server (whole-system
// tests read streams through it). The caller closes it.
func (st *Stack) ConnectNATS(cluster string) (*nats.Conn, error) {
	return st.nats.Server(cluster).Connect("devstack-admin")
}

// roleCredsText is a fresh credential of role in the .creds text format.
func roleCredsText(sc *natsembed.SuperCluster, role natsauth.Role) (string, error) {
	c, err := sc.Trust.Issue(role, 0)
	if err != nil {
		return "", err
	}
	b, err := c.Format()
	return string(b), err
}
