package main

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestInfraFlagsEnv: the shared flags take CELLGRID_DB, CELLGRID_REDIS and
// CELLGRID_NATS when absent (how Nomad jobs pass them), a flag beats its
// variable, and a missing database URL is a clear error, not a connect
// attempt.
func TestInfraFlagsEnv(t *testing.T) {
	t.Setenv("CELLGRID_DB", "postgres://from-env/db")
	t.Setenv("CELLGRID_REDIS", "redis-env:6379")
	t.Setenv("CELLGRID_NATS", "nats://nats-env:4222")
	var f infraFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.register(fs, "")
	if err := fs.Parse([]string{"--redis", "redis-flag:6379"}); err != nil {
		t.Fatal(err)
	}
	if f.db != "postgres://from-env/db" || f.nats != "nats://nats-env:4222" || f.redis != "redis-flag:6379" {
		t.Fatalf("flags %+v", f)
	}

	t.Setenv("CELLGRID_DB", "")
	var g infraFlags
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	g.register(fs, "")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.open(context.Background(), "test"); err == nil || !strings.Contains(err.Error(), "CELLGRID_DB") {
		t.Fatalf("open without a database URL = %v, want an error naming --db and CELLGRID_DB", err)
	}
}
