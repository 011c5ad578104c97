package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/relay"
)

// startRelay runs a real relay on a loopback socket; it answers beacons.
func startRelay(t *testing.T) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	v, err := connecttoken.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(relay.DefaultConfig(), relay.Deps{Conn: pc, Verifier: v, Sessions: relay.NewStaticSessions(), Replay: relay.NewMemoryReplayGuard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r.Addr().String()
}

func TestBestCellProbesBeacons(t *testing.T) {
	live := startRelay(t)
	// A beacon address nobody answers on.
	dead, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	cells := []Cell{
		{ID: "eu", API: "http://eu", Relay: live, Beacon: live, State: "healthy"},
		{ID: "us", API: "http://us", Relay: dead.LocalAddr().String(), Beacon: dead.LocalAddr().String(), State: "healthy"},
		{ID: "ap", API: "http://ap", Relay: live, Beacon: live, State: "draining"},
	}
	global := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/topology" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"cells": cells})
	}))
	defer global.Close()
	c, err := New(Config{GlobalURL: global.URL})
	if err != nil {
		t.Fatal(err)
	}
	best, lat, err := c.BestCell(context.Background(), ProbeConfig{Pings: 3, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if best.ID != "eu" {
		t.Fatalf("best = %s, want eu (us is silent, ap draining)", best.ID)
	}
	if _, ok := lat["eu"]; !ok || len(lat) != 1 {
		t.Fatalf("latencies = %v, want only eu", lat)
	}
	cells[0].State = "failed"
	if _, _, err := c.BestCell(context.Background(), ProbeConfig{Pings: 2, Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrNoCell) {
		t.Fatalf("all cells down: err = %v, want ErrNoCell", err)
	}
}

func TestAPIErrorDecoded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"pool full"}}`))
	}))
	defer srv.Close()
	c, _ := New(Config{GlobalURL: srv.URL})
	_, err := c.LoginDevice(context.Background(), "d1")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "unavailable" || ae.RetryAfter != 3*time.Second {
		t.Fatalf("err = %#v", err)
	}
}

func TestChooseCellTieBreak(t *testing.T) {
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	cells := []Cell{{ID: "us-east-1"}, {ID: "eu-west-1"}, {ID: "ap-south-1"}}
	for _, tc := range []struct {
		name string
		rtts map[string]time.Duration
		tol  time.Duration
		want string // "" = none
	}{
		{"one machine, equal", map[string]time.Duration{"us-east-1": ms(0.3), "eu-west-1": ms(0.3), "ap-south-1": ms(0.3)}, DefaultTolerance, "ap-south-1"},
		{"one machine, noise", map[string]time.Duration{"us-east-1": ms(0.2), "eu-west-1": ms(0.9), "ap-south-1": ms(2.1)}, DefaultTolerance, "ap-south-1"},
		{"noise the other way", map[string]time.Duration{"us-east-1": ms(2.1), "eu-west-1": ms(0.9), "ap-south-1": ms(0.2)}, DefaultTolerance, "ap-south-1"},
		{"lowest id silent", map[string]time.Duration{"us-east-1": ms(0.2), "eu-west-1": ms(0.4)}, DefaultTolerance, "eu-west-1"},
		{"real difference wins", map[string]time.Duration{"us-east-1": ms(12), "eu-west-1": ms(80), "ap-south-1": ms(160)}, DefaultTolerance, "us-east-1"},
		{"just outside tolerance", map[string]time.Duration{"us-east-1": ms(10), "ap-south-1": ms(15.1)}, DefaultTolerance, "us-east-1"},
		{"just inside tolerance", map[string]time.Duration{"us-east-1": ms(10), "ap-south-1": ms(15)}, DefaultTolerance, "ap-south-1"},
		{"within tolerance of the fastest only", map[string]time.Duration{"us-east-1": ms(10), "eu-west-1": ms(14), "ap-south-1": ms(18)}, DefaultTolerance, "eu-west-1"},
		{"exact comparison", map[string]time.Duration{"us-east-1": ms(0.2), "ap-south-1": ms(0.3)}, 0, "us-east-1"},
		{"nothing answered", map[string]time.Duration{}, DefaultTolerance, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := chooseCell(cells, tc.rtts, tc.tol)
			if tc.want == "" {
				if ok {
					t.Fatalf("chose %s, want none", got.ID)
				}
				return
			}
			if !ok || got.ID != tc.want {
				t.Fatalf("chose %q (ok %v), want %s", got.ID, ok, tc.want)
			}
			// The order of the topology does not matter.
			rev := []Cell{cells[2], cells[0], cells[1]}
			if again, _ := chooseCell(rev, tc.rtts, tc.tol); again.ID != got.ID {
				t.Fatalf("reordered topology chose %s, want %s", again.ID, got.ID)
			}
		})
	}
}

func TestToleranceWidensWithNoise(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		tol, noise, want time.Duration
	}{
		{0, 0, DefaultTolerance},
		{0, 1 * ms, DefaultTolerance},
		{0, 8 * ms, 16 * ms},
		{0, time.Second, MaxNoiseTolerance},
		{10 * ms, 2 * ms, 10 * ms},
		{-1, 8 * ms, 0},
	} {
		if got := tolerance(tc.tol, tc.noise); got != tc.want {
			t.Errorf("tolerance(%v, %v) = %v, want %v", tc.tol, tc.noise, got, tc.want)
		}
	}
	// A loaded machine: equal cells measured 14 ms apart with 9 ms of ping
	// spread are a tie (lowest id); regions 40 ms apart are not.
	cells := []Cell{{ID: "b", State: "healthy"}, {ID: "a", State: "healthy"}}
	if got, _ := chooseCell(cells, map[string]time.Duration{"a": 15 * ms, "b": 1 * ms}, tolerance(0, 9*ms)); got.ID != "a" {
		t.Errorf("noisy equal cells: chose %s, want a", got.ID)
	}
	if got, _ := chooseCell(cells, map[string]time.Duration{"a": 41 * ms, "b": 1 * ms}, tolerance(0, 9*ms)); got.ID != "b" {
		t.Errorf("regions apart: chose %s, want b", got.ID)
	}
}
