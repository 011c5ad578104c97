package sdk

import (
	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// CredsEnv is the environment variable a launched game server finds its
// NATS credential in: the .creds text the cell minted for it at launch
// (or a path to a .creds file). The credential only lets the server
// publish its own heartbeat and results and receive its own requests.
const CredsEnv = "CELLGRID_NATS_CREDS"

// NATSOptions are the nats.Options a game server connects with: its
// credential (creds: the .creds text or a path, usually
// os.Getenv(CredsEnv); empty: none) and the reply-inbox prefix its
// permissions allow.
func NATSOptions(creds string) ([]nats.Option, error) {
	c, err := natscreds.LoadCreds(creds)
	if err != nil {
		return nil, err
	}
	return natscreds.Options(c, nil), nil
}
