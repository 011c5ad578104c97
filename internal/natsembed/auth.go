package natsembed

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/cellgrid/cellgrid/internal/natsauth"
)

// TLS is the certificate configuration of a server: Server presents its
// certificate to clients, routes and gateways (it must be valid for both
// server and client use, as routes and gateways verify each other); CA
// is what peers and the server's own client connections trust.
type TLS struct {
	Server *tls.Config
	CA     *x509.CertPool
}

// applyAuth puts a server in operator mode with the memory resolver
// preloaded with the deployment's accounts, makes routes and gateways
// authenticate with the cluster secret, and turns TLS on for clients,
// routes and gateways when configured.
func applyAuth(opts *server.Options, a *natsauth.ServerAuth, t *TLS) error {
	if a != nil {
		oc, err := jwt.DecodeOperatorClaims(a.OperatorJWT)
		if err != nil {
			return fmt.Errorf("natsembed: operator jwt: %w", err)
		}
		opts.TrustedOperators = []*jwt.OperatorClaims{oc}
		opts.SystemAccount = a.SystemAccount
		res := &server.MemAccResolver{}
		for pub, j := range a.AccountJWTs {
			if err := res.Store(pub, j); err != nil {
				return fmt.Errorf("natsembed: account %s: %w", pub, err)
			}
		}
		opts.AccountResolver = res
		opts.Cluster.Username, opts.Cluster.Password = a.RouteUser, a.RoutePassword
		opts.Gateway.Username, opts.Gateway.Password = a.RouteUser, a.RoutePassword
		for _, r := range opts.Routes {
			r.User = url.UserPassword(a.RouteUser, a.RoutePassword)
		}
		for _, g := range opts.Gateway.Gateways {
			for _, u := range g.URLs {
				u.User = url.UserPassword(a.RouteUser, a.RoutePassword)
			}
		}
	}
	if t != nil && t.Server != nil {
		client := t.Server.Clone()
		client.ClientAuth = tls.NoClientCert
		opts.TLSConfig, opts.TLS, opts.TLSVerify = client, true, false
		opts.TLSTimeout = 2
		peers := t.Server.Clone()
		peers.ClientCAs, peers.RootCAs = t.CA, t.CA
		peers.ClientAuth = tls.RequireAndVerifyClientCert
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = peers, 2
		opts.Gateway.TLSConfig, opts.Gateway.TLSTimeout = peers.Clone(), 2
		for _, g := range opts.Gateway.Gateways {
			g.TLSConfig, g.TLSTimeout = peers.Clone(), 2
		}
	}
	return nil
}
