package devstack

import (
	"context"

	"github.com/cellgrid/cellgrid/topology"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/redis/rueidis"
)

func (st *Stack) startCells(ctx context.Context, cfg Config, pool *pgxpool.Pool, topo *topology.Registry,
	redisFor func(string) (rueidis.Client, error), natsFor func(string) (*nats.Conn, error)) error {
	return nil
}
