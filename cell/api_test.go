package cell

import (
	"net/http"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestAPIRefusals(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Fleet.Buffer = 1 })
	ps := newPlayers(4)

	if res := e.call(t, "POST", "/matchmaking/join", "", map[string]any{"game_mode": "duel"}, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("join without token: %d", res.StatusCode)
	}
	if res := e.call(t, "GET", "/matchmaking/status?ticket_id=x", "", nil, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status without token: %d", res.StatusCode)
	}
	if res := e.call(t, "POST", "/matchmaking/join", ps[0], map[string]any{"game_mode": "chess"}, nil); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown mode: %d", res.StatusCode)
	}
	if res := e.call(t, "POST", "/matchmaking/join", ps[0], map[string]any{"game_mode": "duel", "latencies_ms": map[string]int{cellID: 900}}, nil); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("latency above the limit: %d", res.StatusCode)
	}

	e.formParty(t, ps[0], ps[1])
	tk := e.join(t, ps[0], "duo", ps[1])
	// 409: a second active ticket, for the owner or a party member.
	for _, p := range ps[:2] {
		if res := e.call(t, "POST", "/matchmaking/join", p, map[string]any{"game_mode": "duel"}, nil); res.StatusCode != http.StatusConflict {
			t.Fatalf("second ticket for %s: %d", p, res.StatusCode)
		}
	}
	// 403: someone else's ticket, read or cancel; a party member may read
	// but not cancel.
	if _, code := e.status(t, ps[2], tk); code != http.StatusForbidden {
		t.Fatalf("reading another player's ticket: %d", code)
	}
	if res := e.call(t, "DELETE", "/matchmaking/tickets/"+tk, ps[2], nil, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cancelling another player's ticket: %d", res.StatusCode)
	}
	if v, code := e.status(t, ps[1], tk); code != http.StatusOK || v.State != matchmaker.StateQueued {
		t.Fatalf("party member reads: %d %+v", code, v)
	}
	if res := e.call(t, "DELETE", "/matchmaking/tickets/"+tk, ps[1], nil, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("party member cancels: %d", res.StatusCode)
	}
	if res := e.call(t, "DELETE", "/matchmaking/tickets/"+tk, ps[0], nil, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("owner cancels: %d", res.StatusCode)
	}
	if v, _ := e.status(t, ps[0], tk); v.State != matchmaker.StateCancelled {
		t.Fatalf("after cancel: %+v", v)
	}
	if res := e.call(t, "DELETE", "/matchmaking/tickets/"+tk, ps[0], nil, nil); res.StatusCode != http.StatusConflict {
		t.Fatalf("cancel twice: %d", res.StatusCode)
	}
	if _, code := e.status(t, ps[0], "6f1c3c4e-0000-4000-8000-000000000000"); code != http.StatusNotFound {
		t.Fatalf("unknown ticket: %d", code)
	}

	// 503 + Retry-After: the "tiny" pool holds one ticket.
	e.join(t, ps[2], "tiny")
	res := e.call(t, "POST", "/matchmaking/join", ps[3], map[string]any{"game_mode": "tiny"}, nil)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("full pool: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func TestTicketExpires(t *testing.T) {
	e := newEnv(t, nil)
	ps := newPlayers(1)
	tk := e.join(t, ps[0], "tiny") // TTL 1s, and nobody to play with
	testenv.Eventually(t, 20*time.Second, func() error {
		if v, _ := e.status(t, ps[0], tk); v.State != matchmaker.StateExpired {
			return errorf("state %s", v.State)
		}
		return nil
	})
	// Once the matchmaker expired it (pool and active ticket freed), the
	// player may queue again.
	testenv.Eventually(t, 20*time.Second, func() error {
		if res := e.call(t, "POST", "/matchmaking/join", ps[0], map[string]any{"game_mode": "tiny"}, nil); res.StatusCode != http.StatusAccepted {
			return errorf("rejoin: %d", res.StatusCode)
		}
		return nil
	})
}

func TestReadyz(t *testing.T) {
	e := newEnv(t, nil)
	res, err := http.Get(e.c.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d", res.StatusCode)
	}
}
