package dgstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// NATSAndCreds starts an embedded JetStream server whose cluster is named
// cell and returns an admin connection to it, plus the .creds text of DGS
// id of cell: what the cell's launcher hands a server it starts.
func NATSAndCreds(t testing.TB, cell, id string) (*nats.Conn, string) {
	t.Helper()
	sc := testenv.NewSuperCluster(t, cell)
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
