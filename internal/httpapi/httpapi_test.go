package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecodeJSONAndErrors(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	h := Handle(func(w http.ResponseWriter, r *http.Request) error {
		var b body
		if err := DecodeJSON(w, r, &b, 32); err != nil {
			return err
		}
		if b.Name == "busy" {
			return Unavailable("pool full", 1500*time.Millisecond)
		}
		if b.Name == "boom" {
			return errors.New("secret cause")
		}
		WriteJSON(w, 200, b)
		return nil
	})
	cases := []struct {
		body   string
		status int
		code   string
	}{
		{`{"name":"a"}`, 200, ""},
		{`{"name":"a","x":1}`, 400, "invalid_json"},
		{`{"name":"a"} {}`, 400, "invalid_json"},
		{``, 400, "invalid_json"},
		{`{"name":"` + strings.Repeat("a", 100) + `"}`, 413, "body_too_large"},
		{`{"name":"busy"}`, 503, "unavailable"},
		{`{"name":"boom"}`, 500, "internal"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest("POST", "/", strings.NewReader(c.body)))
		if rec.Code != c.status {
			t.Errorf("%q: status %d, want %d (%s)", c.body, rec.Code, c.status, rec.Body)
			continue
		}
		if c.code == "" {
			continue
		}
		var env struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code != c.code || env.Error.Message == "" {
			t.Errorf("%q: envelope %s, want code %s", c.body, rec.Body, c.code)
		}
		if strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("internal cause leaked: %s", rec.Body)
		}
		if c.status == 503 && rec.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
		}
	}
}

func TestServerHealthReadyMetrics(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	s, err := New(Config{}, Deps{Checks: []Check{{Name: "db", Fn: func(context.Context) error {
		if down.Load() {
			return errors.New("db down")
		}
		return nil
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "db down") {
		t.Fatalf("readyz %d %s", code, body)
	}
	down.Store(false)
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz after recovery %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics %d", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorTable(t *testing.T) {
	errGone := errors.New("gone")
	errBusy := errors.New("busy")
	table := ErrorTable{
		{Err: errGone, Status: 404, Code: "gone", Message: "it is gone"},
		{Err: errBusy, Status: 503, Code: "busy", Message: "try later", RetryAfter: time.Second},
	}
	explicit := Conflict("taken", "name taken")
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("lookup x: %w", errGone), 404, "gone"},
		{errBusy, 503, "busy"},
		{fmt.Errorf("wrapped: %w", explicit), 409, "taken"},
		{errors.New("db down"), 500, "internal"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		WriteError(rec, table.Wire(c.err))
		var env struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || rec.Code != c.status || env.Error.Code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, rec.Code, rec.Body, c.status, c.code)
		}
		if known := table.Known(c.err); known != (c.status != 500) {
			t.Errorf("%v: Known = %v", c.err, known)
		}
	}
	if !errors.Is(table.Wire(fmt.Errorf("x: %w", errGone)), errGone) {
		t.Error("Wire lost the cause")
	}
	if table.Wire(nil) != nil {
		t.Error("Wire(nil) != nil")
	}
}
