package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func run(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(ctx)
}

// TestDatabaseFromEnvironment: Nomad jobs pass the database URL only in
// CELLGRID_DB (it carries a password); `cellgrid cell` and `cellgrid
// global` must accept that in place of --db (cobra's required flags only
// count the command line), and say what is missing when neither is set.
func TestDatabaseFromEnvironment(t *testing.T) {
	rf := &rootFlags{logFormat: "text", logLevel: "error"}
	for _, c := range []struct {
		name string
		cmd  func(*rootFlags) *cobra.Command
		args []string
	}{
		{"cell", func(rf *rootFlags) *cobra.Command { return cellCmd(rf, defaultStarters()) }, []string{"--id", "x", "--nats", "nats://127.0.0.1:1"}},
		{"global", func(rf *rootFlags) *cobra.Command { return globalCmd(rf, defaultStarters()) }, []string{"--encryption-key", strings.Repeat("ab", 32), "--nats", "nats://127.0.0.1:1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("CELLGRID_DB", "")
			if err := run(t, c.cmd(rf), c.args...); err == nil || !strings.Contains(err.Error(), "CELLGRID_DB") {
				t.Fatalf("without --db or CELLGRID_DB: %v, want an error naming both", err)
			}
			// Only the environment: the command gets past flag checks to
			// dialling the (closed) database port.
			t.Setenv("CELLGRID_DB", "postgres://cellgrid@127.0.0.1:1/cellgrid?connect_timeout=2")
			err := run(t, c.cmd(rf), c.args...)
			if err == nil || strings.Contains(err.Error(), "CELLGRID_DB") || strings.Contains(err.Error(), "required flag") {
				t.Fatalf("with CELLGRID_DB: %v (want a connection error)", err)
			}
		})
	}
}

// TestCellAddFlags: `cell add` needs an id, a region, a binary and a
// database, and names what is missing.
func TestCellAddFlags(t *testing.T) {
	rf := &rootFlags{logFormat: "text", logLevel: "error"}
	t.Setenv("CELLGRID_DB", "")
	err := run(t, cellAddCmd(rf), "--id", "x")
	if err == nil || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), "binary") {
		t.Fatalf("cell add --id x: %v", err)
	}
	err = run(t, cellAddCmd(rf), "--id", "x", "--region", "eu", "--binary", "/opt/cellgrid")
	if !errors.Is(err, errNoDB) {
		t.Fatalf("cell add without a database: %v", err)
	}
	err = run(t, cellAddCmd(rf), "--id", "x", "--region", "eu", "--binary", "relative/cellgrid", "--db", "postgres://x", "--nomad", "http://127.0.0.1:1", "--nomad-region", "eu")
	if err == nil || !strings.Contains(err.Error(), "absolute path") {
		t.Fatalf("cell add with a relative binary: %v", err)
	}
	if err := run(t, cellRemoveCmd(rf)); err == nil || !strings.Contains(err.Error(), "id") {
		t.Fatalf("cell remove without --id: %v", err)
	}
}
