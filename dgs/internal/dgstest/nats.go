// Package dgstest holds test helpers shared by the dgs packages.
package dgstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// NATS starts an embedded JetStream server whose NATS cluster is named cell
// and returns a connection to it.
//
// testenv.NewNATS (a one-cluster supercluster) never gets JetStream ready
// here: the server's only route is to itself, so clustered JetStream waits
// for routing forever ("JetStream system temporarily unavailable" after
// 60 s). A second, idle cluster joined by gateway gives the meta group a
// peer, as in the three-cluster natsembed test.
func NATS(t testing.TB, cell string) *nats.Conn {
	t.Helper()
	sc := testenv.NewSuperCluster(t, cell, cell+"-peer")
	return testenv.Connect(t, sc.Server(cell))
}

// NATSAndCreds is NATS plus the .creds text of DGS id of cell: what the
// cell's launcher hands a server it starts.
func NATSAndCreds(t testing.TB, cell, id string) (*nats.Conn, string) {
	t.Helper()
	sc := testenv.NewSuperCluster(t, cell, cell+"-peer")
	nc := testenv.Connect(t, sc.Server(cell))
	d := testenv.DGSIssuer(t, sc, cell)
	creds, err := d.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := creds.Format()
	if err != nil {
		t.Fatal(err)
	}
	return nc, string(b)
}
