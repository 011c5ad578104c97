package ops

import (
	"bufio"
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
	o, err := New(cfg, Deps{DB: d.Pool, NATS: nc, Topology: topo, Store: st, Leaderboards: lb, Log: log, Metrics: reg})
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
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ops run: %v", err)
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

func TestWalletGrantAndRevokeThroughTheLedger(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}})
	p := e.player("")
	path := "/ops/players/" + p.String() + "/wallet"
	body := func(amount int64, key string) string {
		return fmt.Sprintf(`{"currency":"gold","amount":%d,"reason":"ticket 7","idempotency_key":%q}`, amount, key)
	}
	balance := func() int64 {
		var b int64
		_ = e.db.Pool.QueryRow(context.Background(), `SELECT COALESCE((SELECT balance FROM wallet_balances WHERE player_id = $1 AND currency = 'gold'), 0)`, p).Scan(&b)
		return b
	}
	var res WalletResult
	if code, ecode := e.call("POST", path, admin, body(100, "g1"), &res); code != 200 || res.Before != 0 || res.Balance != 100 || res.Replayed {
		t.Fatalf("grant: %d %s %+v", code, ecode, res)
	}
	if code, _ := e.call("POST", path, admin, body(100, "g1"), &res); code != 200 || !res.Replayed || balance() != 100 {
		t.Fatalf("replayed grant: %d %+v balance %d", code, res, balance())
	}
	if code, ecode := e.call("POST", path, admin, body(-150, "r1"), nil); code != 409 || ecode != "insufficient_funds" || balance() != 100 {
		t.Fatalf("revoking more than the balance: %d %s balance %d", code, ecode, balance())
	}
	if code, ecode := e.call("POST", path, admin, body(-40, "r2"), &res); code != 200 || res.Balance != 60 || balance() != 60 {
		t.Fatalf("revoke: %d %s %+v balance %d", code, ecode, res, balance())
	}
	grants, revokes := e.auditRows("wallet.grant"), e.auditRows("wallet.revoke")
	if len(grants) != 1 || len(revokes) != 1 {
		t.Fatalf("audit: %d grants %d revokes, want 1 and 1 (a replay and a refusal add none)", len(grants), len(revokes))
	}
	if r := revokes[0]; r.Target != "player:"+p.String() || r.Reason != "ticket 7" || r.ActorID != admin ||
		!strings.Contains(string(r.Before), `"balance": 100`) || !strings.Contains(string(r.After), `"balance": 60`) {
		t.Fatalf("revoke audit row %+v %s %s", r, r.Before, r.After)
	}
	var ledger int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM transactions WHERE player_id = $1 AND kind IN ('ops_grant', 'ops_revoke')`, p).Scan(&ledger); err != nil || ledger != 2 {
		t.Fatalf("ledger rows %d (%v), want 2", ledger, err)
	}
	for _, c := range []struct{ body, code string }{
		{`{"currency":"beans","amount":1,"reason":"x","idempotency_key":"k"}`, "unknown_currency"},
		{`{"currency":"gold","amount":0,"reason":"x","idempotency_key":"k"}`, "invalid_amount"},
		{`{"currency":"gold","amount":1,"reason":"","idempotency_key":"k"}`, "invalid_reason"},
		{`{"currency":"gold","amount":1,"reason":"x","idempotency_key":""}`, "invalid_idempotency_key"},
	} {
		if code, ecode := e.call("POST", path, admin, c.body, nil); code != 400 || ecode != c.code {
			t.Errorf("%s: %d %s, want 400 %s", c.body, code, ecode, c.code)
		}
	}
	if code, _ := e.call("POST", "/ops/players/"+uuid.NewString()+"/wallet", admin, body(5, "g2"), nil); code != 404 {
		t.Errorf("unknown player: %d", code)
	}
}

// TestEventsStreamFollowsTheFleet reads the console's stream: the first
// snapshot at once, then a new one when a cell's state changes, with the
// DGS and session counts the cells publish on NATS (support and up).
func TestEventsStreamFollowsTheFleet(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, StreamInterval: 50 * time.Millisecond})
	player := e.player("")
	pub := func(subject string, v any) {
		b, _ := json.Marshal(v)
		if err := e.nc.Publish(subject, b); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/ops/events", nil)
	req.Header.Set("X-Test-Player", admin.String())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, ct)
	}
	snaps := make(chan Snapshot, 64)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				if json.Unmarshal([]byte(data), &s) == nil {
					snaps <- s
				}
			}
		}
		close(snaps)
	}()
	waitFor := func(what string, ok func(Snapshot) bool) Snapshot {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s, open := <-snaps:
				if !open {
					t.Fatalf("stream ended waiting for %s", what)
				}
				if ok(s) {
					return s
				}
			case <-deadline:
				t.Fatalf("no snapshot with %s", what)
			}
		}
	}
	cell := func(s Snapshot, id string) CellView {
		for _, r := range s.Regions {
			for _, c := range r.Cells {
				if c.ID == id {
					return c
				}
			}
		}
		return CellView{}
	}
	first := waitFor("two cells", func(s Snapshot) bool { return len(s.Regions) == 2 })
	if first.Role != RoleAdmin || first.Totals == nil || cell(first, "eu-1").State != "healthy" {
		t.Fatalf("first snapshot %+v", first)
	}
	if err := e.topo.SetState("eu-1", topology.StateDraining); err != nil {
		t.Fatal(err)
	}
	waitFor("eu-1 draining", func(s Snapshot) bool { return cell(s, "eu-1").State == "draining" })

	for i, st := range []events.DGSState{events.DGSReady, events.DGSReady, events.DGSAllocated} {
		pub(events.DGSHealthSubject("eu-1"), events.DGSHealth{ID: fmt.Sprint("dgs-", i), Cell: "eu-1", State: st, Version: "v7", At: time.Now()})
	}
	pub(events.SessionEventSubject("eu-1", "started"), events.SessionEvent{Kind: "started", SessionID: "s1", Cell: "eu-1", Players: []string{"a", "b"}})
	pub(events.SessionEventSubject("eu-1", "started"), events.SessionEvent{Kind: "started", SessionID: "s2", Cell: "eu-1", Players: []string{"c", "d"}})
	pub(events.SessionEventSubject("eu-1", "ended"), events.SessionEvent{Kind: "ended", SessionID: "s2", Cell: "eu-1"})
	s := waitFor("eu-1's load", func(s Snapshot) bool {
		l := cell(s, "eu-1").Load
		return l != nil && l.DGS["v7"]["ready"] == 2 && l.DGS["v7"]["allocated"] == 1 && l.Players == 2 && l.Matches == 1 && l.MatchesPerMinute == 2
	})
	if s.Totals.Ready != 2 || s.Totals.Allocated != 1 || s.Totals.Players != 2 {
		t.Fatalf("totals %+v", s.Totals)
	}

	// A player sees the public part only.
	var ps Snapshot
	if code, _ := e.call("GET", "/ops/snapshot", player, "", &ps); code != 200 || ps.Role != RolePlayer || ps.Totals != nil || ps.Flags != nil ||
		cell(ps, "eu-1").Load != nil || cell(ps, "eu-1").State != "draining" {
		t.Fatalf("player snapshot: %d %+v", code, ps)
	}
	if code, ecode := e.call("GET", "/ops/events?count=x", admin, "", nil); code != 400 || ecode != "invalid_count" {
		t.Fatalf("bad count: %d %s", code, ecode)
	}
}

func TestItemGrantAndRevokeThroughTheLedger(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}})
	p := e.player("")
	path := "/ops/players/" + p.String() + "/items"
	body := func(item string, q int64, key string) string {
		return fmt.Sprintf(`{"item_template_id":%q,"quantity":%d,"reason":"ticket 9","idempotency_key":%q}`, item, q, key)
	}
	held := func() int64 {
		var n int64
		_ = e.db.Pool.QueryRow(context.Background(), `SELECT COALESCE((SELECT quantity FROM inventory_items WHERE player_id = $1 AND item_template_id = 'potion'), 0)`, p).Scan(&n)
		return n
	}
	var res ItemsResult
	if code, ecode := e.call("POST", path, admin, body("potion", 3, "i1"), &res); code != 200 || res.Before != 0 || res.Quantity != 3 || res.Replayed {
		t.Fatalf("grant: %d %s %+v", code, ecode, res)
	}
	if code, _ := e.call("POST", path, admin, body("potion", 3, "i1"), &res); code != 200 || !res.Replayed || held() != 3 {
		t.Fatalf("replay: %d %+v held %d", code, res, held())
	}
	if code, ecode := e.call("POST", path, admin, body("potion", 3, "i2"), nil); code != 409 || ecode != "max_stack" || held() != 3 {
		t.Fatalf("over the max stack: %d %s held %d", code, ecode, held())
	}
	if code, ecode := e.call("POST", path, admin, body("potion", -4, "i3"), nil); code != 409 || ecode != "not_enough_items" || held() != 3 {
		t.Fatalf("revoking more than held: %d %s held %d", code, ecode, held())
	}
	if code, ecode := e.call("POST", path, admin, body("potion", -2, "i4"), &res); code != 200 || res.Quantity != 1 || held() != 1 {
		t.Fatalf("revoke: %d %s %+v held %d", code, ecode, res, held())
	}
	if code, ecode := e.call("POST", path, admin, body("shield", 1, "i5"), nil); code != 400 || ecode != "unknown_item" {
		t.Fatalf("unknown item: %d %s", code, ecode)
	}
	grants, revokes := e.auditRows("items.grant"), e.auditRows("items.revoke")
	if len(grants) != 1 || len(revokes) != 1 {
		t.Fatalf("audit: %d grants %d revokes, want 1 and 1", len(grants), len(revokes))
	}
	if r := revokes[0]; !strings.Contains(string(r.Before), `"quantity": 3`) || !strings.Contains(string(r.After), `"quantity": 1`) || r.Reason != "ticket 9" {
		t.Fatalf("revoke audit %s -> %s (%s)", r.Before, r.After, r.Reason)
	}
	var ledger int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT COALESCE(sum(quantity), 0) FROM transactions WHERE player_id = $1 AND kind IN ('ops_item_grant', 'ops_item_revoke')`, p).Scan(&ledger); err != nil || ledger != 1 {
		t.Fatalf("ledger quantities sum to %d (%v), want 1 (the inventory)", ledger, err)
	}
	if code, _ := e.call("POST", path, uuid.New(), body("potion", 1, "i6"), nil); code != 403 {
		t.Fatalf("a player granting items: %d", code)
	}
}

func TestFlagReview(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}},
		Support: Holders{Identities: []Identity{{Issuer: "device", Subject: "support-device-02"}}}})
	support := e.player("support-device-02")
	cheater, player := e.player(""), e.player("")
	var flagIDs []uuid.UUID
	for i, rule := range []string{"score_event_rate", "flagged_inputs"} {
		var id uuid.UUID
		if err := e.db.Pool.QueryRow(context.Background(), `INSERT INTO player_flags (player_id, rule, window_start, observed, threshold, created_at)
			VALUES ($1, $2, now(), 500, 120, now() + make_interval(secs => $3)) RETURNING id`, cheater, rule, i).Scan(&id); err != nil {
			t.Fatal(err)
		}
		flagIDs = append(flagIDs, id)
	}
	list := func(who uuid.UUID, status string) []ReviewedFlag {
		t.Helper()
		var l FlagList
		if code, ecode := e.call("GET", "/ops/flags?status="+status, who, "", &l); code != 200 {
			t.Fatalf("GET /ops/flags?status=%s: %d %s", status, code, ecode)
		}
		return l.Flags
	}
	if open := list(support, "open"); len(open) != 2 || open[0].ID != flagIDs[1] || open[0].Review != nil {
		t.Fatalf("open flags %+v", open)
	}
	var rf ReviewedFlag
	review := "/ops/flags/" + flagIDs[0].String() + "/review"
	if code, ecode := e.call("POST", review, support, `{"verdict":"confirmed","note":"speed hack in replay"}`, &rf); code != 200 ||
		rf.Review == nil || rf.Review.Verdict != "confirmed" || rf.Review.ReviewerID != support || rf.PlayerID != cheater {
		t.Fatalf("review: %d %s %+v", code, ecode, rf)
	}
	if open := list(support, "open"); len(open) != 1 || open[0].ID != flagIDs[1] {
		t.Fatalf("open flags after one review %+v", open)
	}
	if done := list(admin, "reviewed"); len(done) != 1 || done[0].Review == nil || done[0].Review.Note != "speed hack in replay" {
		t.Fatalf("reviewed flags %+v", done)
	}
	// An admin overturns it: the audit keeps both verdicts.
	if code, _ := e.call("POST", review, admin, `{"verdict":"cleared","note":"lag spike"}`, &rf); code != 200 || rf.Review.Verdict != "cleared" {
		t.Fatalf("second review: %d %+v", code, rf)
	}
	rows := e.auditRows("flag.review")
	if len(rows) != 2 || string(rows[1].Before) != "null" || !strings.Contains(string(rows[0].Before), `"verdict": "confirmed"`) ||
		!strings.Contains(string(rows[0].After), `"verdict": "cleared"`) || rows[0].ActorID != admin || rows[1].ActorID != support {
		t.Fatalf("audit rows %+v", rows)
	}
	for _, c := range []struct {
		who        uuid.UUID
		path, body string
		status     int
		code       string
	}{
		{player, review, `{"verdict":"cleared"}`, 403, "forbidden"},
		{player, "/ops/flags", "", 403, "forbidden"},
		{support, review, `{"verdict":"maybe"}`, 400, "invalid_verdict"},
		{support, "/ops/flags/" + uuid.NewString() + "/review", `{"verdict":"cleared"}`, 404, "not_found"},
		{support, "/ops/flags/nope/review", `{"verdict":"cleared"}`, 400, "invalid_flag_id"},
		{support, "/ops/flags?status=closed", "", 400, "invalid_status"},
	} {
		method := "POST"
		if c.body == "" {
			method = "GET"
		}
		if code, ecode := e.call(method, c.path, c.who, c.body, nil); code != c.status || ecode != c.code {
			t.Errorf("%s %s %s: %d %s, want %d %s", method, c.path, c.body, code, ecode, c.status, c.code)
		}
	}
	if n := len(e.auditRows("")); n != 2 {
		t.Fatalf("%d audit rows, want 2 (refusals are not actions)", n)
	}
}

func TestLeaderboardCorrection(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}})
	ctx := context.Background()
	cheat, honest := e.player(""), e.player("")
	var recs []leaderboard.Record
	if err := db.RunTx(ctx, e.db.Pool, func(ctx context.Context, tx pgx.Tx) error {
		recs = recs[:0]
		for p, v := range map[uuid.UUID]int64{cheat: 9999, honest: 40} {
			rec, err := e.lb.Submit(ctx, tx, leaderboard.Score{Board: "score", PlayerID: p.String(), Region: "eu", Value: v})
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.lb.Publish(ctx, recs); err != nil {
		t.Fatal(err)
	}
	top := func(region string) string {
		t.Helper()
		p, err := e.lb.Read(ctx, leaderboard.Query{Board: "score", Region: region, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, en := range p.Entries {
			who := "honest"
			if en.PlayerID == cheat.String() {
				who = "cheat"
			}
			out = append(out, fmt.Sprintf("%s=%d", who, en.Score))
		}
		return strings.Join(out, ",")
	}
	if got := top(""); got != "cheat=9999,honest=40" {
		t.Fatalf("before: %s", got)
	}
	path := "/ops/leaderboards/score/records/" + cheat.String()
	var res CorrectionResult
	// Lowering a best score: Submit could not, a correction can.
	if code, ecode := e.call("POST", path, admin, `{"score":12,"reason":"speed hack"}`, &res); code != 200 || res.Before != 9999 || res.Score == nil || *res.Score != 12 {
		t.Fatalf("correct: %d %s %+v", code, ecode, res)
	}
	if got, reg := top(""), top("eu"); got != "honest=40,cheat=12" || reg != got {
		t.Fatalf("after the correction: global %s, eu %s", got, reg)
	}
	res = CorrectionResult{}
	if code, ecode := e.call("POST", path, admin, `{"remove":true,"reason":"banned"}`, &res); code != 200 || res.Score != nil || res.Before != 12 {
		t.Fatalf("remove: %d %s %+v", code, ecode, res)
	}
	if got, reg := top(""), top("eu"); got != "honest=40" || reg != got {
		t.Fatalf("after the removal: global %s, eu %s", got, reg)
	}
	// The database agrees (a rebuilt Redis key would show the same).
	var n int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM leaderboard_records WHERE player_id = $1`, cheat).Scan(&n); err != nil || n != 0 {
		t.Fatalf("records of the removed player: %d %v", n, err)
	}
	rows := e.auditRows("leaderboard.correct")
	if len(rows) != 2 || !strings.Contains(string(rows[1].Before), `"score": 9999`) || !strings.Contains(string(rows[1].After), `"score": 12`) ||
		!strings.Contains(string(rows[0].After), `"removed": true`) || rows[0].Reason != "banned" {
		t.Fatalf("audit rows %+v", rows)
	}
	for _, c := range []struct {
		path, body string
		status     int
		code       string
	}{
		{path, `{"score":1,"reason":"x"}`, 404, "not_ranked"},
		{"/ops/leaderboards/nope/records/" + honest.String(), `{"score":1,"reason":"x"}`, 404, "unknown_leaderboard"},
		{"/ops/leaderboards/score/records/" + honest.String(), `{"score":1,"remove":true,"reason":"x"}`, 400, "invalid_correction"},
		{"/ops/leaderboards/score/records/" + honest.String(), `{"reason":"x"}`, 400, "invalid_correction"},
		{"/ops/leaderboards/score/records/" + honest.String(), `{"score":1}`, 400, "invalid_reason"},
	} {
		if code, ecode := e.call("POST", c.path, admin, c.body, nil); code != c.status || ecode != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.path, c.body, code, ecode, c.status, c.code)
		}
	}
	if code, _ := e.call("POST", "/ops/leaderboards/score/records/"+honest.String(), honest, `{"score":99999,"reason":"me"}`, nil); code != 403 {
		t.Fatalf("a player correcting a board: %d", code)
	}
	if got := top(""); got != "honest=40" {
		t.Fatalf("refused corrections changed the board: %s", got)
	}
}

func TestCatalogEditKeepsAVersionAndOutlivesRestarts(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}})
	ctx := context.Background()
	st := e.ops.deps.Store
	v0, err := st.CatalogVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var res ItemEditResult
	edit := `{"name":"Big potion","prices":{"gold":7},"max_stack":9,"consumable":true,"reason":"weekend sale","catalog_version":%d}`
	if code, ecode := e.call("PUT", "/ops/catalog/items/potion", admin, fmt.Sprintf(edit, v0), &res); code != 200 || res.CatalogVersion != v0+1 {
		t.Fatalf("edit: %d %s %+v (version was %d)", code, ecode, res, v0)
	}
	// Based on the old version: refused, nothing changes.
	if code, ecode := e.call("PUT", "/ops/catalog/items/potion", admin, fmt.Sprintf(edit, v0), nil); code != 409 || ecode != "catalog_version_conflict" {
		t.Fatalf("stale edit: %d %s", code, ecode)
	}
	price := func() (int64, string) {
		t.Helper()
		cat, err := st.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range cat {
			if it.ID == "potion" {
				return it.Prices["gold"], it.Name
			}
		}
		return -1, ""
	}
	if p, name := price(); p != 7 || name != "Big potion" {
		t.Fatalf("catalog after the edit: %d %q", p, name)
	}
	// A restart seeds the catalog from configuration (potion at 10): the
	// operator's edit stays, the version moves on.
	if _, err := store.New(store.Config{Currencies: []string{"gold"}, Items: []store.ItemTemplate{
		{ID: "potion", Name: "Potion", Prices: map[string]int64{"gold": 10}, MaxStack: 5, Consumable: true},
		{ID: "elixir", Name: "Elixir", Prices: map[string]int64{"gold": 80}, MaxStack: 1},
	}}, store.Deps{DB: e.db.Pool}); err != nil {
		t.Fatal(err)
	}
	if p, name := price(); p != 7 || name != "Big potion" {
		t.Fatalf("catalog after a restart: %d %q, want the edit kept", p, name)
	}
	if v, _ := st.CatalogVersion(ctx); v <= res.CatalogVersion {
		t.Fatalf("version %d after seeding, want > %d", v, res.CatalogVersion)
	}
	rows := e.auditRows("catalog.edit")
	if len(rows) != 1 || !strings.Contains(string(rows[0].Before), `"prices": {"gold": 10}`) || !strings.Contains(string(rows[0].After), `"gold": 7`) {
		t.Fatalf("audit rows %+v %s %s", rows, rows[0].Before, rows[0].After)
	}
	for _, c := range []struct{ body, code string }{
		{`{"name":"","prices":{},"max_stack":1,"reason":"x"}`, "invalid_item"},
		{`{"name":"x","prices":{"gold":1},"max_stack":0,"reason":"x"}`, "invalid_item"},
		{`{"name":"x","prices":{"beans":1},"max_stack":1,"reason":"x"}`, "unknown_currency"},
		{`{"name":"x","prices":{"gold":-1},"max_stack":1,"reason":"x"}`, "invalid_item"},
		{`{"name":"x","prices":{"gold":1},"max_stack":1}`, "invalid_reason"},
	} {
		if code, ecode := e.call("PUT", "/ops/catalog/items/thing", admin, c.body, nil); code != 400 || ecode != c.code {
			t.Errorf("%s: %d %s, want 400 %s", c.body, code, ecode, c.code)
		}
	}
	if code, _ := e.call("PUT", "/ops/catalog/items/potion", e.player(""), `{"name":"Free","prices":{"gold":0},"max_stack":1,"reason":"x"}`, nil); code != 403 {
		t.Fatalf("a player editing the catalog: %d", code)
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

// TestEventsStreamEndsWithRun: an open console stream ends when the ops
// layer stops, so it never holds the HTTP server's graceful shutdown.
func TestEventsStreamEndsWithRun(t *testing.T) {
	admin := uuid.New()
	d := testenv.NewDatabase(t)
	_, nc := testenv.NewNATS(t, "global")
	o, err := New(Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, StreamInterval: 20 * time.Millisecond},
		Deps{DB: d.Pool, NATS: nc, Topology: topology.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	req := httptest.NewRequest("GET", "/ops/events", nil).WithContext(context.WithValue(context.Background(), callerKey{}, caller{ID: admin, Role: RoleAdmin}))
	rec := httptest.NewRecorder()
	ended := make(chan error, 1)
	go func() { ended <- o.handleEvents(rec, req) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived Run")
	}
	if !strings.Contains(rec.Body.String(), "event: snapshot") {
		t.Fatalf("no snapshot was sent: %q", rec.Body.String())
	}
}

// TestEventsStreamOutlivesServerTimeouts: behind a server whose read and
// write timeouts are short, the console stream stays open and keeps
// delivering changes.
func TestEventsStreamOutlivesServerTimeouts(t *testing.T) {
	admin := uuid.New()
	d := testenv.NewDatabase(t)
	_, nc := testenv.NewNATS(t, "global")
	topo := topology.NewRegistry(topology.Cell{ID: "eu-1", Region: "eu", API: "http://127.0.0.1:1", Relay: "127.0.0.1:2"})
	o, err := New(Config{Admins: Holders{PlayerIDs: []string{admin.String()}}, StreamInterval: 20 * time.Millisecond},
		Deps{DB: d.Pool, NATS: nc, Topology: topo, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := httpapi.NewRouter()
	o.Register(mux, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(accesstoken.WithClaims(r.Context(), accesstoken.Claims{PlayerID: admin.String()})))
		})
	})
	const timeout = 300 * time.Millisecond
	hs, err := httpapi.New(httpapi.Config{ReadTimeout: timeout, WriteTimeout: timeout}, httpapi.Deps{Handler: mux})
	if err != nil {
		t.Fatal(err)
	}
	hs.Start()
	defer hs.Close()
	res, err := http.Get(hs.URL() + "/ops/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	states := make(chan string, 16)
	go func() {
		defer close(states)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				if json.Unmarshal([]byte(data), &s) == nil && len(s.Regions) == 1 {
					states <- s.Regions[0].Cells[0].State
				}
			}
		}
	}()
	if st := <-states; st != "healthy" {
		t.Fatalf("first state %q", st)
	}
	// Change the cell well after both timeouts have passed.
	deadline := time.Now().Add(4 * timeout)
	for time.Now().Before(deadline) {
		select {
		case st, ok := <-states:
			if !ok {
				t.Fatal("the stream ended before the server's timeouts would matter")
			}
			t.Fatalf("unexpected snapshot %q", st)
		case <-time.After(deadline.Sub(time.Now())):
		}
	}
	if err := topo.SetState("eu-1", topology.StateDraining); err != nil {
		t.Fatal(err)
	}
	select {
	case st, ok := <-states:
		if !ok || st != "draining" {
			t.Fatalf("after the timeouts: %q (stream open: %v), want draining", st, ok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot after the change")
	}
}
