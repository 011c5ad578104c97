package localserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// RedisInstall is the command that installs redis-server on Debian/Ubuntu.
const RedisInstall = "apt-get update && apt-get install -y redis-server"

// RedisConfig configures a private redis-server.
type RedisConfig struct {
	Dir  string
	Port int // 0 picks a free one
	// Persist keeps an append-only file in Dir (dev); tests run without.
	Persist bool
}

// Redis is a running private redis-server.
type Redis struct {
	cfg  RedisConfig
	proc *process
}

// StartRedis starts redis-server on 127.0.0.1.
func StartRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	bin, err := lookBinary("redis-server", "/usr/bin/redis-server", "/usr/local/bin/redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w (install: %s)", err, RedisInstall)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	if cfg.Port == 0 {
		if cfg.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"--port", strconv.Itoa(cfg.Port), "--bind", "127.0.0.1", "--dir", cfg.Dir,
		"--daemonize", "no", "--protected-mode", "yes", "--save", ""}
	if cfg.Persist {
		args = append(args, "--appendonly", "yes")
	} else {
		args = append(args, "--appendonly", "no")
	}
	logPath := filepath.Join(cfg.Dir, "redis.log")
	proc, err := startProcess(exec.Command(bin, args...), syscall.SIGTERM, logPath)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := waitTCP(wctx, proc, cfg.addr(), logPath); err != nil {
		_ = proc.stop(5 * time.Second)
		return nil, fmt.Errorf("redis: %w", err)
	}
	return &Redis{cfg: cfg, proc: proc}, nil
}

func (c RedisConfig) addr() string { return "127.0.0.1:" + strconv.Itoa(c.Port) }

// Addr is host:port of the server.
func (r *Redis) Addr() string { return r.cfg.addr() }

// Close stops the server; safe to call twice.
func (r *Redis) Close() error { return r.proc.stop(10 * time.Second) }
