package dgs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestRunServerServesHealthAndMetrics(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, cell)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- RunServer(ctx, ServerConfig{Cell: cell, ID: "dgs-m", NATS: nc, GameListen: "127.0.0.1:0",
			HealthInterval: 50 * time.Millisecond, MetricsAddr: addr})
	}()
	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		code, body, err := get("/metrics")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, `dgs_state{state="ready"} 1`) || !strings.Contains(body, "dgs_joins_total 0") {
			return fmt.Errorf("metrics %d: ready state not exported yet", code)
		}
		return nil
	})
	if code, body, err := get("/readyz"); err != nil || code != 200 {
		t.Fatalf("readyz %d %s %v", code, body, err)
	}
	// Unknown paths and methods answer with the JSON error envelope.
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/no/such/path", 404, "not_found"},
		{"POST", "/metrics", 405, "method_not_allowed"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" || err != nil ||
			env.Error.Code != tc.code || env.Error.Message == "" {
			t.Errorf("%s %s: %d %q %+v (%v), want %d %s in the JSON envelope",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), env, err, tc.status, tc.code)
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Fatal("metrics listener still open after RunServer returned")
	}
}
