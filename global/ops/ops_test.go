package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// env is an ops layer on a private database and NATS server, served by an
// httptest server whose "auth" takes the player id from X-Test-Player (the
// access-token check itself is auth's, tested there).
type env struct {
	t    *testing.T
	ops  *Ops
	url  string
	db   *testenv.Database
	nc   *nats.Conn
	topo *topology.Registry
	reg  *prometheus.Registry
	lb   *leaderboard.Leaderboards
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	d := testenv.NewDatabase(t)
	_, nc := testenv.NewNATS(t, "global")
	topo := topology.NewRegistry(
		topology.Cell{ID: "eu-1", Region: "eu", API: "http://127.0.0.1:1", Relay: "127.0.0.1:2"},
		topology.Cell{ID: "us-1", Region: "us", API: "http://127.0.0.1:3", Relay: "127.0.0.1:4"},
	)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.New(store.Config{Currencies: []string{"gold"}, Items: []store.ItemTemplate{
		{ID: "potion", Name: "Potion", Prices: map[string]int64{"gold": 10}, MaxStack: 5, Consumable: true},
	}}, store.Deps{DB: d.Pool, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	rd := testenv.NewRedis(t)
	lb, err := leaderboard.New(leaderboard.Config{Boards: []leaderboard.Definition{
		{ID: "score", Operator: leaderboard.OpBest, Scope: leaderboard.ScopeRegional},
	}}, leaderboard.Deps{DB: d.Pool, Redis: rd.Client, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	failover, err := topology.NewFailover(topology.FailoverConfig{}, topology.FailoverDeps{NATS: nc, Registry: topo, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	o, err := New(cfg, Deps{DB: d.Pool, NATS: nc, Topology: topo, Store: st, Leaderboards: lb, Regions: failover, Log: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	mux := httpapi.NewRouter()
	o.Register(mux, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Test-Player")
			if id == "" {
				httpapi.WriteError(w, httpapi.Unauthorized("missing bearer token"))
				return
			}
			next.ServeHTTP(w, r.WithContext(accesstoken.WithClaims(r.Context(), accesstoken.Claims{PlayerID: id})))
		})
	})
	srv := httptest.NewServer(httpapi.JSONErrors(mux))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- o.Run(ctx) }()
	go func() { done <- failover.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("ops/failover run: %v", err)
			}
		}
	})
	return &env{t: t, ops: o, url: srv.URL, db: d, nc: nc, topo: topo, reg: reg, lb: lb}
}

// player creates a player row (and a device identity) and returns its id.
func (e *env) player(device string) uuid.UUID {
	e.t.Helper()
	id := uuid.New()
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO players (id, username, created_at, last_login_at) VALUES ($1, $2, now(), now())`,
		id, "p_"+id.String()[:8]); err != nil {
		e.t.Fatal(err)
	}
	if device != "" {
		if _, err := e.db.Pool.Exec(ctx, `INSERT INTO auth_identities (issuer, subject, provider, player_id, created_at) VALUES ('device', $1, 'device', $2, now())`,
			device, id); err != nil {
			e.t.Fatal(err)
		}
	}
	return id
}

// call does method path as player (uuid.Nil: no token) and decodes a JSON
// answer into out; it returns the status and the error code, if any.
func (e *env) call(method, path string, player uuid.UUID, body string, out any) (int, string) {
	e.t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.url+path, rb)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if player != uuid.Nil {
		req.Header.Set("X-Test-Player", player.String())
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		var env struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(b, &env); err != nil || env.Error.Code == "" {
			e.t.Fatalf("%s %s: %d %s is not the error envelope", method, path, res.StatusCode, b)
		}
		return res.StatusCode, env.Error.Code
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return res.StatusCode, ""
}

func (e *env) auditRows(action string) []audit.Entry {
	e.t.Helper()
	p, err := audit.List(context.Background(), e.db.Pool, "", action, audit.MaxLimit)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Entries
}

func TestRolesFromConfigIdentitiesAndClaim(t *testing.T) {
	adminByID := uuid.New()
	e := newEnv(t, Config{
		Admins:      Holders{PlayerIDs: []string{adminByID.String()}, Identities: []Identity{{Issuer: "device", Subject: "admin-device-0001"}}},
		Support:     Holders{Identities: []Identity{{Issuer: "device", Subject: "support-device-01"}}},
		AdminGroups: []string{"sre"}, SupportGroups: []string{"cs"},
	})
	// adminByID needs no identity, only the player row.
	if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO players (id, username, created_at) VALUES ($1, 'cfg_admin', now())`, adminByID); err != nil {
		t.Fatal(err)
	}
	adminByDevice := e.player("admin-device-0001")
	support := e.player("support-device-01")
	plain := e.player("plain-device-00001")
	oidcUser := e.player("")

	login := func(id uuid.UUID, claims string) {
		t.Helper()
		if err := db.RunTx(context.Background(), e.db.Pool, func(ctx context.Context, tx pgx.Tx) error {
			return e.ops.OnLogin(ctx, tx, id, "https://idp.example", json.RawMessage(claims))
		}); err != nil {
			t.Fatal(err)
		}
	}
	role := func(id uuid.UUID) Role {
		t.Helper()
		var me Me
		if code, _ := e.call("GET", "/ops/me", id, "", &me); code != 200 {
			t.Fatalf("GET /ops/me: %d", code)
		}
		return me.Role
	}
	login(oidcUser, `{"sub":"u1","groups":["players","sre"]}`)
	for _, c := range []struct {
		who  string
		id   uuid.UUID
		want Role
	}{{"configured player id", adminByID, RoleAdmin}, {"configured identity", adminByDevice, RoleAdmin},
		{"support identity", support, RoleSupport}, {"nobody", plain, RolePlayer}, {"OIDC group sre", oidcUser, RoleAdmin}} {
		if got := role(c.id); got != c.want {
			t.Errorf("%s: role %s, want %s", c.who, got, c.want)
		}
	}
	// Admin routes: admins pass, everyone else gets 403 in the envelope.
	for _, id := range []uuid.UUID{adminByID, adminByDevice, oidcUser} {
		if code, _ := e.call("GET", "/ops/audit", id, "", nil); code != 200 {
			t.Errorf("admin %s: GET /ops/audit %d", id, code)
		}
	}
	for _, id := range []uuid.UUID{support, plain} {
		if code, ecode := e.call("GET", "/ops/audit", id, "", nil); code != 403 || ecode != "forbidden" {
			t.Errorf("non-admin %s: GET /ops/audit %d %s, want 403 forbidden", id, code, ecode)
		}
		if code, ecode := e.call("POST", "/ops/cells/eu-1/drain", id, "", nil); code != 403 || ecode != "forbidden" {
			t.Errorf("non-admin %s: drain %d %s, want 403 forbidden", id, code, ecode)
		}
	}
	if code, ecode := e.call("GET", "/ops/audit", uuid.Nil, "", nil); code != 401 || ecode != "unauthorized" {
		t.Errorf("no token: %d %s", code, ecode)
	}
	// The identity provider demotes: the next request already sees it.
	login(oidcUser, `{"sub":"u1","groups":"cs"}`)
	if got := role(oidcUser); got != RoleSupport {
		t.Errorf("after demotion to cs: role %s, want support", got)
	}
	login(oidcUser, `{"sub":"u1"}`)
	if got := role(oidcUser); got != RolePlayer {
		t.Errorf("after losing every group: role %s, want player", got)
	}
	if code, _ := e.call("GET", "/ops/audit", oidcUser, "", nil); code != 403 {
		t.Errorf("demoted admin: GET /ops/audit %d, want 403", code)
	}
	// A device login (no claims) leaves stored roles alone.
	login(oidcUser, `{"sub":"u1","groups":["sre"]}`)
	if err := db.RunTx(context.Background(), e.db.Pool, func(ctx context.Context, tx pgx.Tx) error {
		return e.ops.OnLogin(ctx, tx, oidcUser, "device", nil)
	}); err != nil {
		t.Fatal(err)
	}
	if got := role(oidcUser); got != RoleAdmin {
		t.Errorf("after a device login: role %s, want admin kept", got)
	}
}

func TestDrainSendsTheNATSRequestAndIsAudited(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, DrainTimeout: 500 * time.Millisecond})
	// A stand-in for cell eu-1 answers as cell/heartbeat.go does.
	got := make(chan string, 4)
	sub, err := e.nc.Subscribe(events.CellDrainSubject("eu-1"), func(m *nats.Msg) {
		got <- string(m.Data)
		_ = m.Respond([]byte(map[string]string{"drain": "draining", "undrain": "healthy"}[string(m.Data)]))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var act CellAction
	if code, ecode := e.call("POST", "/ops/cells/eu-1/drain", admin, `{"reason":"kernel upgrade"}`, &act); code != 200 {
		t.Fatalf("drain: %d %s", code, ecode)
	}
	if v := <-got; v != "drain" {
		t.Fatalf("the cell received %q, want drain", v)
	}
	if act.Before != "healthy" || act.State != "draining" || act.AuditID == "" {
		t.Fatalf("drain answer %+v", act)
	}
	rows := e.auditRows("cell.drain")
	if len(rows) != 1 {
		t.Fatalf("audit rows %+v, want one", rows)
	}
	r := rows[0]
	if r.ID.String() != act.AuditID || r.ActorID != admin || r.ActorRole != "admin" || r.Target != "eu-1" ||
		r.Reason != "kernel upgrade" || r.Outcome != "ok" ||
		string(r.Before) != `{"state": "healthy"}` || string(r.After) != `{"state": "draining"}` || time.Since(r.At) > time.Minute {
		t.Fatalf("audit row %+v before=%s after=%s", r, r.Before, r.After)
	}
	// us-1 runs nowhere: the failure is answered and audited too.
	if code, ecode := e.call("POST", "/ops/cells/us-1/undrain", admin, "", nil); code != 502 || ecode != "cell_unreachable" {
		t.Fatalf("undrain of a silent cell: %d %s", code, ecode)
	}
	if rows := e.auditRows("cell.undrain"); len(rows) != 1 || rows[0].Outcome != "failed" || rows[0].Target != "us-1" {
		t.Fatalf("failed undrain audit: %+v", rows)
	}
	if code, ecode := e.call("POST", "/ops/cells/nowhere/drain", admin, "", nil); code != 404 || ecode != "unknown_cell" {
		t.Fatalf("unknown cell: %d %s", code, ecode)
	}
	if code, ecode := e.call("POST", "/ops/cells/eu-1/drain", admin, `{"reason":"`+strings.Repeat("x", 600)+`"}`, nil); code != 400 || ecode != "invalid_reason" {
		t.Fatalf("long reason: %d %s", code, ecode)
	}
	if n := len(e.auditRows("")); n != 2 {
		t.Fatalf("%d audit rows, want 2 (refused requests are not actions)", n)
	}
	// The same actions are counted, and the topology is exported.
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(`
# HELP cellgrid_ops_actions_total Operator actions by action and outcome (ok, failed), as audited.
# TYPE cellgrid_ops_actions_total counter
cellgrid_ops_actions_total{action="cell.drain",outcome="ok"} 1
cellgrid_ops_actions_total{action="cell.undrain",outcome="failed"} 1
`), "cellgrid_ops_actions_total"); err != nil {
		t.Error(err)
	}
	if err := e.topo.SetState("us-1", topology.StateFailed); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(`
# HELP cellgrid_topology_cell_state 1 for each cell's current state in the global topology (healthy, draining, failed).
# TYPE cellgrid_topology_cell_state gauge
cellgrid_topology_cell_state{cell="eu-1",region="eu",state="draining"} 0
cellgrid_topology_cell_state{cell="eu-1",region="eu",state="failed"} 0
cellgrid_topology_cell_state{cell="eu-1",region="eu",state="healthy"} 1
cellgrid_topology_cell_state{cell="us-1",region="us",state="draining"} 0
cellgrid_topology_cell_state{cell="us-1",region="us",state="failed"} 1
cellgrid_topology_cell_state{cell="us-1",region="us",state="healthy"} 0
`), "cellgrid_topology_cell_state"); err != nil {
		t.Error(err)
	}
}

func TestAuditPagesNewestFirst(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}})
	ctx := context.Background()
	for i := range 7 {
		if _, err := audit.Record(ctx, e.db.Pool, audit.Entry{ActorID: admin, ActorRole: "admin", Action: "test.step", Target: fmt.Sprint(i)},
			nil, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	var targets []string
	cursor := ""
	pages := 0
	for {
		var p audit.Page
		path := "/ops/audit?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if code, ecode := e.call("GET", path, admin, "", &p); code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, ecode)
		}
		pages++
		for _, en := range p.Entries {
			targets = append(targets, en.Target)
			if string(en.Before) != "null" {
				t.Errorf("before = %s, want null", en.Before)
			}
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if got := strings.Join(targets, ","); got != "6,5,4,3,2,1,0" || pages != 3 {
		t.Fatalf("paged %s in %d pages, want 6..0 in 3", got, pages)
	}
	if code, ecode := e.call("GET", "/ops/audit?cursor=bm9wZQ", admin, "", nil); code != 400 || ecode != "invalid_cursor" {
		t.Fatalf("bad cursor: %d %s", code, ecode)
	}
	if code, ecode := e.call("GET", "/ops/audit?limit=501", admin, "", nil); code != 400 || ecode != "invalid_limit" {
		t.Fatalf("limit 501: %d %s", code, ecode)
	}
}

func TestHoldersAdd(t *testing.T) {
	var h Holders
	id := uuid.New()
	for _, s := range []string{id.String(), "device|my-device-0001", "https://idp.example|sub|with|bars"} {
		if err := h.Add(s); err != nil {
			t.Fatalf("Add(%q): %v", s, err)
		}
	}
	if len(h.PlayerIDs) != 1 || h.PlayerIDs[0] != id.String() || len(h.Identities) != 2 ||
		h.Identities[0] != (Identity{"device", "my-device-0001"}) || h.Identities[1] != (Identity{"https://idp.example", "sub|with|bars"}) {
		t.Fatalf("holders %+v", h)
	}
	for _, bad := range []string{"", "nobody", "|sub", "iss|"} {
		if err := h.Add(bad); err == nil {
			t.Errorf("Add(%q) accepted", bad)
		}
	}
}
