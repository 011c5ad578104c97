package testenv

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/internal/natsembed"
)

// ConnectAs opens a connection to s with a credential of role (issued by
// sc's trust), closed at the end of the test.
func ConnectAs(t testing.TB, sc *natsembed.SuperCluster, s *natsembed.Server, role natsauth.Role) *nats.Conn {
	t.Helper()
	creds, err := sc.Trust.Issue(role, 0)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := s.ConnectAs(t.Name()+" "+role.Name(), creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// DGSIssuer is what a cell of sc needs to mint its DGSs' credentials.
func DGSIssuer(t testing.TB, sc *natsembed.SuperCluster, cell string) natsauth.DGSIssuer {
	t.Helper()
	d, err := sc.Trust.DGSIssuer(cell)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
