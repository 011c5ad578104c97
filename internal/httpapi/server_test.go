package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestServerRun: Run serves until ctx ends and returns nil on a clean stop;
// a Server never run closes its listener at once, twice.
func TestServerRun(t *testing.T) {
	testenv.CheckGoroutines(t)
	s, err := httpapi.New(httpapi.DefaultConfig(), httpapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(s.URL() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Run = %v", err)
	}

	idle, err := httpapi.New(httpapi.Config{}, httpapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(idle.URL() + "/healthz"); err == nil {
		t.Fatal("a closed, never-run server still accepts connections")
	}
}
