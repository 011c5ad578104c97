package testenv

import (
	"context"
	"net"
	"strconv"
	"sync"
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
	dir    string
	mu     sync.Mutex
	server *localserver.Redis // guarded by mu
}

// NewRedis starts a redis-server for this test alone (a few milliseconds),
// so tests may FLUSHALL or restart it freely. It stops at the end of the test.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv, err := localserver.StartRedis(ctx, localserver.RedisConfig{Dir: dir})
	if err != nil {
		t.Fatalf("testenv: redis-server unavailable: %v", err)
	}
	c, err := redisclient.New(redisclient.Config{Addr: srv.Addr()})
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	r := &Redis{Addr: srv.Addr(), Client: c, dir: dir, server: srv}
	t.Cleanup(func() {
		c.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		_ = r.server.Close()
	})
	return r
}

// Stop stops the server (Redis down); Restart brings it back empty.
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.server.Close(); err != nil {
		t.Fatalf("testenv: stop redis: %v", err)
	}
}

// Restart stops the server and starts a fresh one on the same port: every
// key is gone (tests run without persistence), as after a crash. Client
// reconnects by itself.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.server.Close(); err != nil {
		t.Fatalf("testenv: stop redis: %v", err)
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	p, _ := strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := localserver.StartRedis(ctx, localserver.RedisConfig{Dir: r.dir, Port: p})
	if err != nil {
		t.Fatalf("testenv: restart redis on %s: %v", r.Addr, err)
	}
	r.server = srv
}
