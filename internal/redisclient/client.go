package redisclient

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// Config selects the Redis server.
type Config struct {
	// Addr is host:port.
	Addr string
	// DisableCache turns client-side caching off (e.g. for benchmarks that
	// must hit the server).
	DisableCache bool
}

// New connects a rueidis client to cfg.Addr.
func New(cfg Config) (rueidis.Client, error) {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{cfg.Addr},
		DisableCache:      cfg.DisableCache,
		ConnWriteTimeout:  5 * time.Second,
		BlockingPoolSize:  64,
		PipelineMultiplex: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", cfg.Addr, err)
	}
	return c, nil
}

// Ping checks the server answers; used by /readyz.
func Ping(ctx context.Context, c rueidis.Client) error {
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}
