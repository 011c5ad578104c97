package natsauth

import (
	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// ClientFlags are how a process finds its NATS credential and CA:
// --nats-creds (or env CELLGRID_NATS_CREDS, a path or the .creds text)
// and --nats-ca (or CELLGRID_NATS_CA).
type ClientFlags struct {
	Creds string
	CA    string
}

// Options loads the credential and CA the flags name.
func (f ClientFlags) Options() ([]nats.Option, error) {
	c, err := natscreds.LoadCreds(f.Creds)
	if err != nil {
		return nil, err
	}
	ca, err := natscreds.LoadCA(f.CA)
	if err != nil {
		return nil, err
	}
	return natscreds.Options(c, ca), nil
}
