package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
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

// TestPublicListenerHidesErrorsAndMetrics: a Public server names failing
// checks without their error text and serves no /metrics; the ops server
// (the zero Config) serves both.
func TestPublicListenerHidesErrorsAndMetrics(t *testing.T) {
	checks := []httpapi.Check{
		{Name: "database", Fn: func(context.Context) error { return nil }},
		{Name: "redis", Fn: func(context.Context) error { return errors.New("dial tcp 10.0.0.7:6379: connection refused") }},
	}
	get := func(s *httpapi.Server, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, public := range []bool{true, false} {
		s, err := httpapi.New(httpapi.Config{Public: public}, httpapi.Deps{Checks: checks})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		code, body := get(s, "/readyz")
		var status map[string]string
		_ = json.Unmarshal([]byte(body), &status)
		mcode, mbody := get(s, "/metrics")
		_ = s.Close()
		if code != 503 || status["database"] != "ok" {
			t.Fatalf("public=%v readyz %d %s", public, code, body)
		}
		if public {
			if status["redis"] != httpapi.CheckFailing || strings.Contains(body, "10.0.0.7") {
				t.Errorf("public readyz leaks the error: %s", body)
			}
			if mcode != 404 || !strings.Contains(mbody, `"error"`) {
				t.Errorf("public /metrics %d %s, want 404 JSON", mcode, mbody)
			}
		} else {
			if !strings.Contains(status["redis"], "10.0.0.7") {
				t.Errorf("ops readyz hides the error: %s", body)
			}
			if mcode != 200 || !strings.Contains(mbody, "go_goroutines") {
				t.Errorf("ops /metrics %d", mcode)
			}
		}
	}
}
