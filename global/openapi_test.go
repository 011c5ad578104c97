package global

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/global/audit"
	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/ops"
	"github.com/cellgrid/cellgrid/global/payment"
	"github.com/cellgrid/cellgrid/global/profile"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/global/telemetry"
	"github.com/cellgrid/cellgrid/internal/httpapi/openapitest"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// TestMain stops the shared PostgreSQL after the tests.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	testCell      = "eu-test"
	webhookSecret = "whsec_openapi_test"
	adminDevice   = "admin-device-00000001"
)

// startGlobal runs a global layer on private PostgreSQL, Redis and NATS.
// adminID may call /admin/flags; it logs in with adminDevice.
func startGlobal(t *testing.T, adminID uuid.UUID) *Server {
	t.Helper()
	d := testenv.NewDatabase(t)
	rd := testenv.NewRedis(t)
	sc := testenv.NewSuperCluster(t, testCell, "global")
	nc := testenv.Connect(t, sc.Server("global"))
	ctx := context.Background()
	testenv.NewPlayerWith(t, d.Pool, testenv.Player{ID: adminID.String(), Username: "admin_1"})
	if _, err := d.Pool.Exec(ctx, `INSERT INTO auth_identities (issuer, subject, provider, player_id, created_at) VALUES ('device', $1, 'device', $2, now())`, adminDevice, adminID); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg := Config{
		Cells: []string{testCell},
		Auth:  auth.Config{AllowDeviceLogin: true, EncryptionKey: key},
		Store: store.Config{
			Currencies: []string{"gold", "gems"}, StartingGrant: map[string]int64{"gold": 1000},
			Items: []store.ItemTemplate{
				{ID: "potion", Name: "Health potion", Prices: map[string]int64{"gold": 50}, MaxStack: 20, Consumable: true},
				{ID: "sword", Name: "Iron sword", Description: "Sharp.", Prices: map[string]int64{"gold": 300, "gems": 5}, MaxStack: 1, Tradable: true, Equippable: true},
			},
		},
		Leaderboards: leaderboard.Config{Boards: []leaderboard.Definition{
			{ID: "score", Operator: leaderboard.OpBest, Scope: leaderboard.ScopeRegional},
		}},
		Achievements: achievement.Config{Achievements: []achievement.Definition{
			{ID: "first_win", Name: "First blood", Kind: achievement.KindUnlock, Event: achievement.EventWin, Goal: 1},
			{ID: "ten_duels", Name: "Duelist", Description: "Win ten duels.", Kind: achievement.KindCounter, Event: achievement.EventWin, GameMode: "duel", Goal: 10},
		}},
		Telemetry: telemetry.Config{AdminPlayerIDs: []string{adminID.String()}},
		Payment:   payment.Config{StripeWebhookSecret: webhookSecret},
		Ops:       ops.Config{Admins: ops.Holders{PlayerIDs: []string{adminID.String()}}},
	}
	topo := topology.NewRegistry(topology.Cell{ID: testCell, Region: "eu", API: "http://127.0.0.1:1", Relay: "127.0.0.1:2", Version: "v1"})
	s, err := New(cfg, Deps{DB: d.Pool, Redis: rd.Client, NATS: nc, Topology: topo,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("global run: %v", err)
		}
	})
	return s
}

// TestOpenAPIDocument runs the global layer and holds it to
// global/openapi.json: the document validates, documents exactly the
// routes the server registers, is served without a token, and the answers
// of a walk through every operation (successes and refusals) match its
// schemas and error codes.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := openapitest.Load(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	adminID := uuid.New()
	s := startGlobal(t, adminID)
	openapitest.CheckRoutes(t, doc, s.http.Routes())

	v, err := openapitest.NewValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	client := v.Client(t)
	type req struct {
		method, path, token, body string
		header                    map[string]string
	}
	do := func(r req, out any) (int, http.Header) {
		t.Helper()
		var rb io.Reader
		if r.body != "" {
			rb = strings.NewReader(r.body)
		}
		hr, _ := http.NewRequest(r.method, s.URL()+r.path, rb)
		if r.body != "" {
			hr.Header.Set("Content-Type", "application/json")
		}
		if r.token != "" {
			hr.Header.Set("Authorization", "Bearer "+r.token)
		}
		for k, v := range r.header {
			hr.Header.Set(k, v)
		}
		res, err := client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if out != nil && res.StatusCode < 300 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %d %s: %v", r.method, r.path, res.StatusCode, b, err)
			}
		}
		return res.StatusCode, res.Header
	}
	want := func(r req, status int, out any) http.Header {
		t.Helper()
		got, h := do(r, out)
		if got != status {
			t.Errorf("%s %s: status %d, want %d", r.method, r.path, got, status)
		}
		return h
	}

	// The document itself, without a token.
	res, err := http.Get(s.URL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal(served, openAPIDocument) {
		t.Fatalf("GET /openapi.json: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(served))
	}
	want(req{method: "GET", path: "/openapi.json"}, 200, nil)
	want(req{method: "GET", path: "/healthz"}, 200, nil)
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, _ := do(req{method: "GET", path: "/readyz"}, nil); code != 200 {
			return fmt.Errorf("readyz %d", code)
		}
		return nil
	})
	want(req{method: "GET", path: "/topology"}, 200, nil)
	want(req{method: "GET", path: "/.well-known/jwks.json"}, 200, nil)

	// Login, refresh, logout.
	type tokens struct {
		PlayerID     string `json:"player_id"`
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	login := func(device string) tokens {
		t.Helper()
		var tk tokens
		want(req{method: "POST", path: "/auth/login", body: `{"provider":"device","device_id":"` + device + `"}`}, 200, &tk)
		return tk
	}
	p1, p2, admin := login("openapi-device-000001"), login("openapi-device-000002"), login(adminDevice)
	if admin.PlayerID != adminID.String() {
		t.Fatalf("admin logged in as %s, want %s", admin.PlayerID, adminID)
	}
	want(req{method: "POST", path: "/auth/login", body: `{"provider":"steam"}`}, 400, nil)
	want(req{method: "POST", path: "/auth/login", body: `{"provider":"device","device_id":"short"}`}, 400, nil)
	want(req{method: "POST", path: "/auth/login", body: `{"provider":"oidc"}`}, 400, nil)
	want(req{method: "POST", path: "/auth/login", body: `{"provider":"oidc","id_token":"not.a.jwt"}`}, 401, nil)
	want(req{method: "POST", path: "/auth/login", body: `{"provider":`}, 400, nil)
	var p1b tokens
	want(req{method: "POST", path: "/auth/refresh", body: `{"refresh_token":"` + p1.RefreshToken + `"}`}, 200, &p1b)
	want(req{method: "POST", path: "/auth/refresh", body: `{"refresh_token":"` + p1.RefreshToken + `"}`}, 401, nil) // reused: session revoked
	want(req{method: "POST", path: "/auth/refresh", body: `{"refresh_token":"garbage"}`}, 401, nil)
	want(req{method: "POST", path: "/auth/refresh", body: `{}`}, 400, nil)
	p1 = login("openapi-device-000001")
	want(req{method: "POST", path: "/auth/logout"}, 401, nil)
	want(req{method: "POST", path: "/auth/logout", token: p2.AccessToken, body: `{"refresh_token":"` + p1.RefreshToken + `"}`}, 403, nil)

	// Profiles.
	want(req{method: "GET", path: "/player/me/profile", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/player/" + p2.PlayerID + "/profile", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/player/" + uuid.NewString() + "/profile", token: p1.AccessToken}, 404, nil)
	want(req{method: "GET", path: "/player/me/profile"}, 401, nil)
	want(req{method: "PATCH", path: "/player/me", token: p1.AccessToken, body: `{"username":"open_api_1"}`}, 200, nil)
	want(req{method: "PATCH", path: "/player/me", token: p2.AccessToken, body: `{"username":"OPEN_API_1"}`}, 409, nil)
	want(req{method: "PATCH", path: "/player/me", token: p2.AccessToken, body: `{"username":"no spaces"}`}, 400, nil)
	want(req{method: "PATCH", path: "/player/me", token: p2.AccessToken, body: `{}`}, 400, nil)
	want(req{method: "GET", path: "/player/me/export", token: p1.AccessToken}, 200, nil)

	// Achievements and storage.
	want(req{method: "GET", path: "/player/me/achievements", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/player/" + p2.PlayerID + "/achievements", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/player/nope/achievements", token: p1.AccessToken}, 400, nil)
	st := "/player/me/storage/settings"
	h := want(req{method: "PUT", path: st, token: p1.AccessToken, body: `{"volume":3}`, header: map[string]string{"If-None-Match": "*"}}, 201, nil)
	etag := h.Get("ETag")
	want(req{method: "PUT", path: st, token: p1.AccessToken, body: `{"volume":4}`, header: map[string]string{"If-None-Match": "*"}}, 412, nil)
	want(req{method: "PUT", path: st, token: p1.AccessToken, body: `{"volume":4}`}, 428, nil)
	want(req{method: "PUT", path: st, token: p1.AccessToken, body: `{"volume":4}`, header: map[string]string{"If-Match": "x"}}, 400, nil)
	want(req{method: "PUT", path: st, token: p1.AccessToken, body: `{"volume":4}`, header: map[string]string{"If-Match": etag}}, 200, nil)
	want(req{method: "PUT", path: st, token: p1.AccessToken, body: `{"volume":5}`, header: map[string]string{"If-Match": etag}}, 412, nil)
	h = want(req{method: "GET", path: st, token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: st, token: p1.AccessToken, header: map[string]string{"If-None-Match": h.Get("ETag")}}, 304, nil)
	want(req{method: "GET", path: "/player/me/storage/missing", token: p1.AccessToken}, 404, nil)
	want(req{method: "GET", path: "/player/me/storage/bad%20key", token: p1.AccessToken}, 400, nil)

	// Store, wallet, inventory.
	want(req{method: "GET", path: "/store/items", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/wallet", token: p1.AccessToken}, 200, nil)
	buy := func(item string, qty int, key string) string {
		return fmt.Sprintf(`{"item_template_id":%q,"quantity":%d,"idempotency_key":%q}`, item, qty, key)
	}
	var bought struct {
		InventoryItemID string `json:"inventory_item_id"`
	}
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("sword", 1, "key-sword-1")}, 201, &bought)
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("sword", 1, "key-sword-1")}, 200, nil)
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("potion", 1, "key-sword-1")}, 422, nil)
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("sword", 1, "key-sword-2")}, 409, nil)
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("potion", 20, "key-potion-1")}, 409, nil) // 1000 gold, 700 left
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("shield", 1, "key-shield-1")}, 404, nil)
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("potion", 0, "key-potion-2")}, 400, nil)
	var potion struct {
		InventoryItemID string `json:"inventory_item_id"`
	}
	want(req{method: "POST", path: "/store/purchase", token: p1.AccessToken, body: buy("potion", 3, "key-potion-3")}, 201, &potion)
	want(req{method: "GET", path: "/inventory/me", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/inventory/" + p1.PlayerID, token: p2.AccessToken}, 404, nil)
	want(req{method: "GET", path: "/inventory/nope", token: p2.AccessToken}, 400, nil)
	want(req{method: "POST", path: "/inventory/" + bought.InventoryItemID + "/equip", token: p1.AccessToken}, 200, nil)
	want(req{method: "POST", path: "/inventory/" + bought.InventoryItemID + "/unequip", token: p1.AccessToken}, 200, nil)
	want(req{method: "POST", path: "/inventory/" + potion.InventoryItemID + "/consume", token: p1.AccessToken, body: `{"quantity":2}`}, 200, nil)
	want(req{method: "POST", path: "/inventory/" + potion.InventoryItemID + "/equip", token: p1.AccessToken}, 409, nil)
	want(req{method: "POST", path: "/inventory/" + uuid.NewString() + "/unequip", token: p1.AccessToken}, 404, nil)
	want(req{method: "POST", path: "/inventory/nope/consume", token: p1.AccessToken}, 400, nil)

	// Leaderboards.
	want(req{method: "GET", path: "/leaderboards/score?limit=10", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/leaderboards/score?region=eu", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/leaderboards/score?around=me", token: p1.AccessToken}, 404, nil)
	want(req{method: "GET", path: "/leaderboards/nope", token: p1.AccessToken}, 404, nil)
	want(req{method: "GET", path: "/leaderboards/score?limit=0", token: p1.AccessToken}, 400, nil)

	// Admin flags.
	want(req{method: "GET", path: "/admin/flags", token: admin.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/admin/flags?limit=5000", token: admin.AccessToken}, 400, nil)
	want(req{method: "GET", path: "/admin/flags", token: p1.AccessToken}, 403, nil)

	// The ops console and its admin API. eu-test is in the topology but
	// runs nowhere: a stand-in answers its drain requests once subscribed.
	want(req{method: "GET", path: "/ops"}, 200, nil)
	want(req{method: "GET", path: "/ops/console.js"}, 200, nil)
	want(req{method: "GET", path: "/ops/me"}, 401, nil)
	want(req{method: "GET", path: "/ops/me", token: p2.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/ops/snapshot", token: admin.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/ops/snapshot", token: p2.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/ops/events?count=1", token: admin.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/ops/events?count=0", token: admin.AccessToken}, 400, nil)
	drainPath := "/ops/cells/" + testCell + "/drain"
	want(req{method: "POST", path: drainPath, token: p2.AccessToken}, 403, nil)
	want(req{method: "POST", path: "/ops/cells/nowhere-1/drain", token: admin.AccessToken}, 404, nil)
	want(req{method: "POST", path: drainPath, token: admin.AccessToken, body: `{"reason":"no cell answers"}`}, 502, nil)
	want(req{method: "POST", path: drainPath, token: admin.AccessToken, body: `{"reason":`}, 400, nil)
	sub, err := s.deps.NATS.Subscribe(events.CellDrainSubject(testCell), func(m *nats.Msg) {
		_ = m.Respond([]byte(map[string]string{"drain": "draining", "undrain": "healthy"}[string(m.Data)]))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	want(req{method: "POST", path: drainPath, token: admin.AccessToken, body: `{"reason":"game day"}`}, 200, nil)
	want(req{method: "POST", path: "/ops/cells/" + testCell + "/undrain", token: admin.AccessToken}, 200, nil)
	wallet := "/ops/players/" + p2.PlayerID + "/wallet"
	grant := func(cur string, amount int64, key string) string {
		return fmt.Sprintf(`{"currency":%q,"amount":%d,"reason":"support ticket 42","idempotency_key":%q}`, cur, amount, key)
	}
	want(req{method: "POST", path: wallet, token: admin.AccessToken, body: grant("gems", 25, "t42")}, 200, nil)
	want(req{method: "POST", path: wallet, token: admin.AccessToken, body: grant("gems", -500, "t43")}, 409, nil)
	want(req{method: "POST", path: wallet, token: admin.AccessToken, body: grant("beans", 5, "t44")}, 400, nil)
	want(req{method: "POST", path: wallet, token: p2.AccessToken, body: grant("gems", 5, "t45")}, 403, nil)
	want(req{method: "POST", path: "/ops/players/" + uuid.NewString() + "/wallet", token: admin.AccessToken, body: grant("gems", 5, "t46")}, 404, nil)
	items := "/ops/players/" + p2.PlayerID + "/items"
	itemBody := func(item string, q int64, key string) string {
		return fmt.Sprintf(`{"item_template_id":%q,"quantity":%d,"reason":"event reward","idempotency_key":%q}`, item, q, key)
	}
	want(req{method: "POST", path: items, token: admin.AccessToken, body: itemBody("potion", 2, "i1")}, 200, nil)
	want(req{method: "POST", path: items, token: admin.AccessToken, body: itemBody("potion", -5, "i2")}, 409, nil)
	want(req{method: "POST", path: items, token: admin.AccessToken, body: itemBody("shield", 1, "i3")}, 400, nil)
	want(req{method: "POST", path: items, token: p2.AccessToken, body: itemBody("potion", 1, "i4")}, 403, nil)
	var flag struct {
		ID uuid.UUID
	}
	if err := s.deps.DB.QueryRow(context.Background(), `INSERT INTO player_flags (player_id, rule, window_start, observed, threshold)
		VALUES ($1, 'score_event_rate', now(), 500, 120) RETURNING id`, p2.PlayerID).Scan(&flag.ID); err != nil {
		t.Fatal(err)
	}
	want(req{method: "GET", path: "/ops/flags", token: admin.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/ops/flags?status=closed", token: admin.AccessToken}, 400, nil)
	want(req{method: "GET", path: "/ops/flags", token: p2.AccessToken}, 403, nil)
	want(req{method: "POST", path: "/ops/flags/" + flag.ID.String() + "/review", token: admin.AccessToken, body: `{"verdict":"confirmed","note":"replay"}`}, 200, nil)
	want(req{method: "GET", path: "/ops/flags?status=reviewed", token: admin.AccessToken}, 200, nil)
	want(req{method: "POST", path: "/ops/flags/" + uuid.NewString() + "/review", token: admin.AccessToken, body: `{"verdict":"cleared"}`}, 404, nil)
	want(req{method: "POST", path: "/ops/flags/" + flag.ID.String() + "/review", token: admin.AccessToken, body: `{"verdict":"maybe"}`}, 400, nil)
	if _, err := s.deps.DB.Exec(context.Background(), `INSERT INTO leaderboard_records (leaderboard_id, season, player_id, region, score)
		VALUES ('score', 0, $1, 'eu', 5000)`, p2.PlayerID); err != nil {
		t.Fatal(err)
	}
	record := "/ops/leaderboards/score/records/" + p2.PlayerID
	want(req{method: "POST", path: record, token: admin.AccessToken, body: `{"score":50,"reason":"replay showed a bug"}`}, 200, nil)
	want(req{method: "POST", path: record, token: admin.AccessToken, body: `{"reason":"neither"}`}, 400, nil)
	want(req{method: "POST", path: "/ops/leaderboards/score/records/" + p1.PlayerID, token: admin.AccessToken, body: `{"remove":true,"reason":"x"}`}, 404, nil)
	want(req{method: "POST", path: record, token: p2.AccessToken, body: `{"score":9,"reason":"x"}`}, 403, nil)
	h = want(req{method: "GET", path: "/store/items", token: p1.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/store/items", token: p1.AccessToken, header: map[string]string{"If-None-Match": h.Get("ETag")}}, 304, nil)
	var edited struct {
		CatalogVersion int64 `json:"catalog_version"`
	}
	want(req{method: "PUT", path: "/ops/catalog/items/potion", token: admin.AccessToken,
		body: `{"name":"Health potion","prices":{"gold":40},"max_stack":20,"consumable":true,"reason":"sale"}`}, 200, &edited)
	want(req{method: "PUT", path: "/ops/catalog/items/potion", token: admin.AccessToken,
		body: fmt.Sprintf(`{"name":"Health potion","prices":{"gold":45},"max_stack":20,"reason":"late","catalog_version":%d}`, edited.CatalogVersion-1)}, 409, nil)
	want(req{method: "PUT", path: "/ops/catalog/items/potion", token: admin.AccessToken, body: `{"name":"x","prices":{"beans":1},"max_stack":1,"reason":"x"}`}, 400, nil)
	want(req{method: "PUT", path: "/ops/catalog/items/potion", token: p2.AccessToken, body: `{"name":"x","prices":{},"max_stack":1,"reason":"x"}`}, 403, nil)
	want(req{method: "GET", path: "/store/items", token: p1.AccessToken, header: map[string]string{"If-None-Match": h.Get("ETag")}}, 200, nil)
	// Region failover: a second region to send eu's players to; the
	// failover store opens in the background, so wait until it answers.
	s.deps.Topology.Put(topology.Cell{ID: "us-test", Region: "us", API: "http://127.0.0.1:3", Relay: "127.0.0.1:4"})
	testenv.Eventually(t, 20*time.Second, func() error {
		if code, _ := do(req{method: "POST", path: "/ops/regions/eu/failover", token: admin.AccessToken, body: `{"to":"us","reason":"drill"}`}, nil); code != 200 {
			return fmt.Errorf("failover: %d", code)
		}
		return nil
	})
	want(req{method: "GET", path: "/ops/snapshot", token: admin.AccessToken}, 200, nil)
	want(req{method: "POST", path: "/ops/regions/eu/failover", token: p2.AccessToken, body: `{"reason":"x"}`}, 403, nil)
	want(req{method: "POST", path: "/ops/regions/mars/failover", token: admin.AccessToken, body: `{"reason":"x"}`}, 404, nil)
	want(req{method: "POST", path: "/ops/regions/eu/restore", token: admin.AccessToken, body: `{"reason":"drill over"}`}, 200, nil)
	want(req{method: "POST", path: "/ops/regions/eu/restore", token: admin.AccessToken, body: `{"reason":"again"}`}, 409, nil)
	want(req{method: "POST", path: "/ops/regions/eu/restore", token: admin.AccessToken, body: `{}`}, 400, nil)
	want(req{method: "GET", path: "/ops/audit?limit=2", token: admin.AccessToken}, 200, nil)
	want(req{method: "GET", path: "/ops/audit?cursor=nope", token: admin.AccessToken}, 400, nil)
	want(req{method: "GET", path: "/ops/audit", token: p2.AccessToken}, 403, nil)

	// The payment webhook is signed by the provider, not a token.
	event := fmt.Sprintf(`{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_1","amount_total":500,"payment_status":"paid","metadata":{"player_id":%q,"currency":"gems","credit_amount":"50"}}}}`, p1.PlayerID)
	sig := payment.SignatureHeader(webhookSecret, time.Now(), []byte(event))
	want(req{method: "POST", path: "/payments/stripe/webhook", body: event, header: map[string]string{"Stripe-Signature": sig}}, 200, nil)
	want(req{method: "POST", path: "/payments/stripe/webhook", body: event, header: map[string]string{"Stripe-Signature": "t=1,v1=00"}}, 400, nil)
	other := `{"id":"evt_2","type":"customer.created","data":{"object":{"id":"cus_1"}}}`
	want(req{method: "POST", path: "/payments/stripe/webhook", body: other, header: map[string]string{"Stripe-Signature": payment.SignatureHeader(webhookSecret, time.Now(), []byte(other))}}, 200, nil)

	// Logout and erasure end the walk.
	want(req{method: "POST", path: "/auth/logout", token: p2.AccessToken}, 204, nil)
	want(req{method: "DELETE", path: "/player/me", token: p1.AccessToken}, 204, nil)

	// Every documented operation was exercised.
	seen := map[string]bool{}
	for _, s := range v.Seen() {
		seen[s[:strings.LastIndexByte(s, ' ')]] = true
	}
	for _, op := range openapitest.Operations(doc) {
		if !seen[op] {
			t.Errorf("operation %s was not exercised", op)
		}
	}
}

// TestOpenAPISchemasMatchGoTypes fails when a field is added to, removed
// from or made optional in a type the API writes or reads, and the
// document's schema was not changed with it (also for fields the walk in
// TestOpenAPIDocument never sees filled, e.g. leaderboard entries).
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc, err := openapitest.Load(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	openapitest.CheckSchemas(t, doc, map[string]any{
		"Cell": topology.Cell{}, "Topology": topology.Document{},
		"Profile": profile.Public{}, "Export": profile.Export{}, "ExportedPlayer": profile.ExportedPlayer{},
		"AchievementStatus": achievement.Status{},
		"ItemTemplate":      store.ItemTemplate{}, "PurchaseResult": store.PurchaseResult{}, "InventoryItem": store.InventoryItem{},
		"LeaderboardPage": leaderboard.Page{}, "LeaderboardEntry": leaderboard.Entry{},
		"Flag":  telemetry.Flag{},
		"OpsMe": ops.Me{}, "OpsSnapshot": ops.Snapshot{}, "RegionView": ops.RegionView{}, "CellView": ops.CellView{},
		"CellLoad": ops.CellLoad{}, "OpsTotals": ops.Totals{}, "CellAction": ops.CellAction{},
		"AuditPage": audit.Page{}, "AuditEntry": audit.Entry{}, "WalletResult": ops.WalletResult{}, "ItemsResult": ops.ItemsResult{},
		"CorrectionResult": ops.CorrectionResult{}, "ItemEditResult": ops.ItemEditResult{},
		"RegionAction": ops.RegionAction{}, "RegionState": events.RegionState{},
		"ReviewedFlag": ops.ReviewedFlag{}, "Review": ops.Review{}, "ReviewedFlags": ops.FlagList{},
	}, map[string]any{
		"PurchaseRequest": store.PurchaseRequest{},
		"WalletRequest":   ops.WalletRequest{}, "CellActionRequest": ops.ActionRequest{}, "ItemsRequest": ops.ItemsRequest{},
		"ReviewRequest": ops.ReviewRequest{}, "CorrectionRequest": ops.CorrectionRequest{},
		"ItemEditRequest": ops.ItemEditRequest{}, "RegionRequest": ops.RegionRequest{},
	})
}
