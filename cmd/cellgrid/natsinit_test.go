package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// TestNATSInitConfiguresARealServer: a nats-server configured with the
// auth.conf `cellgrid nats init` writes refuses anonymous clients and
// accepts the generated credentials.
func TestNATSInitConfiguresARealServer(t *testing.T) {
	dir := t.TempDir()
	cmd := natsCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetArgs([]string{"init", "--out", dir, "--cells", "eu-west-1,us-east-1"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:-1\ninclude auth.conf\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("auth.conf does not parse: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	if nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous client accepted")
	}
	for _, f := range []string{"global.creds", "ops.creds", "cell-eu-west-1.creds"} {
		creds, err := natscreds.LoadCreds(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(ns.ClientURL(), natscreds.Options(creds, nil)...)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		nc.Close()
	}
	// A DGS credential minted with the cell's signer file is accepted too.
	d, err := loadDGSIssuer(filepath.Join(dir, "dgs-signer-eu-west-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := d.Issue("eu-west-1-abcd", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), natscreds.Options(creds, nil)...)
	if err != nil {
		t.Fatalf("dgs: %v", err)
	}
	nc.Close()
}
