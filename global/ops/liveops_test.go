package ops

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

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

func TestRegionFailoverAndRestore(t *testing.T) {
	admin := uuid.New()
	e := newEnv(t, Config{Admins: Holders{PlayerIDs: []string{admin.String()}}})
	region := func(name string) RegionView {
		t.Helper()
		var s Snapshot
		if code, _ := e.call("GET", "/ops/snapshot", admin, "", &s); code != 200 {
			t.Fatalf("snapshot %d", code)
		}
		for _, r := range s.Regions {
			if r.Region == name {
				return r
			}
		}
		t.Fatalf("no region %s in %+v", name, s.Regions)
		return RegionView{}
	}
	if r := region("eu"); r.State != "active" {
		t.Fatalf("eu before: %+v", r)
	}
	var act RegionAction
	// The failover store opens in the background: wait until it answers.
	testenv.Eventually(t, 20*time.Second, func() error {
		code, ecode := e.call("POST", "/ops/regions/eu/failover", admin, `{"to":"us","reason":"eu-west power"}`, &act)
		if code != 200 {
			return fmt.Errorf("failover: %d %s", code, ecode)
		}
		return nil
	})
	if act.Before.State != "active" || act.After.State != "failed_over" || act.After.To != "us" || act.AuditID == "" {
		t.Fatalf("failover answer %+v", act)
	}
	if r := region("eu"); r.State != "failed_over" || r.To != "us" {
		t.Fatalf("eu after the failover: %+v", r)
	}
	if code, ecode := e.call("POST", "/ops/regions/us/failover", admin, `{"to":"eu","reason":"x"}`, nil); code != 409 || ecode != "region_op_refused" {
		t.Fatalf("failing over to a failed-over region: %d %s", code, ecode)
	}
	if code, ecode := e.call("POST", "/ops/regions/eu/restore", admin, `{"reason":"power back"}`, &act); code != 200 || act.After.State != "active" {
		t.Fatalf("restore: %d %s %+v", code, ecode, act)
	}
	if code, ecode := e.call("POST", "/ops/regions/eu/restore", admin, `{"reason":"again"}`, nil); code != 409 || ecode != "region_op_refused" {
		t.Fatalf("restoring an active region: %d %s", code, ecode)
	}
	for _, c := range []struct {
		who        uuid.UUID
		path, body string
		status     int
		code       string
	}{
		{admin, "/ops/regions/mars/failover", `{"reason":"x"}`, 404, "unknown_region"},
		{admin, "/ops/regions/eu/failover", `{}`, 400, "invalid_reason"},
		{e.player(""), "/ops/regions/eu/failover", `{"reason":"x"}`, 403, "forbidden"},
	} {
		if code, ecode := e.call("POST", c.path, c.who, c.body, nil); code != c.status || ecode != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.path, c.body, code, ecode, c.status, c.code)
		}
	}
	fo, re := e.auditRows("region.failover"), e.auditRows("region.restore")
	okFo := 0
	for _, r := range fo {
		if r.Outcome == "ok" {
			okFo++
			if r.Target != "eu" || r.Reason != "eu-west power" || !strings.Contains(string(r.After), `"failed_over"`) {
				t.Errorf("failover audit row %+v %s", r, r.After)
			}
		}
	}
	if okFo != 1 || len(re) != 2 || re[0].Outcome != "failed" || re[1].Outcome != "ok" {
		t.Fatalf("audit: %d ok failovers of %d, restores %+v", okFo, len(fo), re)
	}
}
