package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/internal/localserver"
	"github.com/cellgrid/cellgrid/internal/redisclient"
)

// Redis is a private redis-server for one test.
type Redis struct {
	Addr   string
	Client rueidis.Client
	server *localserver.Redis
}

// NewRedis starts a redis-server for this test alone (a few milliseconds),
// so tests may FLUSHALL or restart it freely. It stops at the end of the test.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := localserver.StartRedis(ctx, localserver.RedisConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("testenv: redis-server unavailable: %v", err)
	}
	c, err := redisclient.New(redisclient.Config{Addr: srv.Addr()})
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	r := &Redis{Addr: srv.Addr(), Client: c, server: srv}
	t.Cleanup(func() {
		c.Close()
		_ = srv.Close()
	})
	return r
}
