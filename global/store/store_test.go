package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func testConfig() store.Config {
	return store.Config{
		Currencies:    []string{"gold", "gems"},
		StartingGrant: map[string]int64{"gold": 1000, "gems": 5},
		Items: []store.ItemTemplate{
			{ID: "sword", Name: "Sword", Prices: map[string]int64{"gold": 7, "gems": 1}, MaxStack: 5000, Equippable: true, Tradable: true},
			{ID: "potion", Name: "Potion", Prices: map[string]int64{"gold": 3}, MaxStack: 5, Consumable: true},
			{ID: "free_hat", Name: "Hat", Prices: map[string]int64{"gold": 0}, MaxStack: 1, Equippable: true},
		},
	}
}

func newStore(t testing.TB) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	d := testenv.NewDatabase(t)
	s, err := store.New(testConfig(), store.Deps{DB: d.Pool, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s, d.Pool
}

func grantedPlayer(t testing.TB, s *store.Store, pool *pgxpool.Pool, name string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	err := db.RunTx(context.Background(), pool, func(ctx context.Context, tx pgx.Tx) error {
		p, err := testenv.InsertPlayer(ctx, tx, testenv.Player{Username: name})
		if err != nil {
			return err
		}
		id = uuid.MustParse(p)
		return s.GrantStarting(ctx, tx, id)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ledgerSum and balance must agree for every currency.
func checkLedger(t *testing.T, pool *pgxpool.Pool, player uuid.UUID, currency string) int64 {
	t.Helper()
	var bal, sum int64
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT balance FROM wallet_balances WHERE player_id=$1 AND currency=$2`, player, currency).Scan(&bal); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(amount),0) FROM transactions WHERE player_id=$1 AND currency=$2`, player, currency).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if bal != sum || bal < 0 {
		t.Fatalf("%s: balance %d, ledger sum %d", currency, bal, sum)
	}
	return bal
}

func TestConcurrentPurchasesSharedKeys(t *testing.T) {
	s, pool := newStore(t)
	player := grantedPlayer(t, s, pool, "buyer")
	const loops, perLoop, keys = 64, 8, 200 // 512 requests over 200 keys; 1000 gold buys at most 142 swords
	var mu sync.Mutex
	first := map[string]uuid.UUID{} // key → transaction id seen
	var ok, replayed, broke, failed int
	var wg sync.WaitGroup
	for g := range loops {
		wg.Go(func() {
			for i := range perLoop {
				key := fmt.Sprintf("shared-key-%03d", (g*perLoop+i*37)%keys)
				res, err := s.Purchase(context.Background(), player, store.PurchaseRequest{
					ItemTemplateID: "sword", Quantity: 1, IdempotencyKey: key, Currency: "gold"})
				mu.Lock()
				switch {
				case errors.Is(err, store.ErrInsufficientFunds):
					broke++
				case err != nil:
					failed++
					t.Errorf("purchase: %v", err)
				default:
					if prev, seen := first[key]; seen && prev != res.TransactionID {
						t.Errorf("key %s: two transactions %s and %s", key, prev, res.TransactionID)
					}
					first[key] = res.TransactionID
					if res.Replayed {
						replayed++
					} else {
						ok++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	bal := checkLedger(t, pool, player, "gold")
	var rows, qty int64
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE player_id=$1 AND kind='purchase'`, player).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT quantity FROM inventory_items WHERE player_id=$1 AND item_template_id='sword'`, player).Scan(&qty); err != nil {
		t.Fatal(err)
	}
	t.Logf("ok=%d replayed=%d insufficient=%d failed=%d balance=%d", ok, replayed, broke, failed, bal)
	if int64(ok) != rows || rows != int64(len(first)) || qty != rows {
		t.Fatalf("first purchases %d, ledger rows %d, distinct keys %d, swords %d", ok, rows, len(first), qty)
	}
	if bal != 1000-7*rows {
		t.Fatalf("balance %d after %d swords", bal, rows)
	}
	if rows != 142 || broke == 0 {
		t.Fatalf("expected the wallet to run dry at 142 swords, got %d (insufficient %d)", rows, broke)
	}
}

func TestPurchaseReplayAndMismatch(t *testing.T) {
	s, pool := newStore(t)
	player := grantedPlayer(t, s, pool, "p")
	ctx := context.Background()
	req := store.PurchaseRequest{ItemTemplateID: "potion", Quantity: 2, IdempotencyKey: "key-aaaaaaaa"}
	r1, err := s.Purchase(ctx, player, req)
	if err != nil || r1.Replayed || r1.Balance != 994 || r1.Currency != "gold" {
		t.Fatalf("first: %+v %v", r1, err)
	}
	r2, err := s.Purchase(ctx, player, req)
	if err != nil || !r2.Replayed || r2.TransactionID != r1.TransactionID || r2.Balance != 994 {
		t.Fatalf("replay: %+v %v", r2, err)
	}
	req.Quantity = 3
	if _, err := s.Purchase(ctx, player, req); !errors.Is(err, store.ErrIdempotencyMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	// max stack 5: 2 owned + 4 more is refused, and nothing is debited.
	if _, err := s.Purchase(ctx, player, store.PurchaseRequest{ItemTemplateID: "potion", Quantity: 4, IdempotencyKey: "key-bbbbbbbb"}); !errors.Is(err, store.ErrMaxStack) {
		t.Fatalf("max stack: %v", err)
	}
	// gems: 5 granted, sword costs 1 gem; 6 is too many.
	if _, err := s.Purchase(ctx, player, store.PurchaseRequest{ItemTemplateID: "sword", Quantity: 6, IdempotencyKey: "key-cccccccc", Currency: "gems"}); !errors.Is(err, store.ErrInsufficientFunds) {
		t.Fatalf("insufficient: %v", err)
	}
	if b := checkLedger(t, pool, player, "gold"); b != 994 {
		t.Fatalf("gold %d", b)
	}
	if b := checkLedger(t, pool, player, "gems"); b != 5 {
		t.Fatalf("gems %d", b)
	}
	// The starting grant is idempotent per player.
	err = db.RunTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error { return s.GrantStarting(ctx, tx, player) })
	if err != nil {
		t.Fatal(err)
	}
	if b := checkLedger(t, pool, player, "gold"); b != 994 {
		t.Fatalf("gold after second grant %d", b)
	}
}

type client struct {
	t   *testing.T
	url string
}

func (c client) do(method, path, player string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	if player != "" {
		req.Header.Set(testenv.PlayerHeader, player)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestHTTP(t *testing.T) {
	s, pool := newStore(t)
	alice := grantedPlayer(t, s, pool, "alice")
	bob := grantedPlayer(t, s, pool, "bob")
	mux := http.NewServeMux()
	s.Register(mux, testenv.TrustPlayerHeader)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := client{t, srv.URL}
	A, B := alice.String(), bob.String()

	if code, _ := c.do("GET", "/wallet", "", nil); code != 401 {
		t.Fatalf("unauthenticated wallet: %d", code)
	}
	code, body := c.do("GET", "/store/items", A, nil)
	if code != 200 || len(body["items"].([]any)) != 3 {
		t.Fatalf("items: %d %v", code, body)
	}
	code, body = c.do("GET", "/wallet", A, nil)
	if code != 200 || body["balances"].(map[string]any)["gold"].(float64) != 1000 {
		t.Fatalf("wallet: %d %v", code, body)
	}
	buy := map[string]any{"item_template_id": "sword", "quantity": 2, "idempotency_key": "http-key-1"}
	code, body = c.do("POST", "/store/purchase", A, buy)
	if code != 201 || body["balance"].(float64) != 986 {
		t.Fatalf("purchase: %d %v", code, body)
	}
	itemID := body["inventory_item_id"].(string)
	if code, body = c.do("POST", "/store/purchase", A, buy); code != 200 || body["replayed"] != true {
		t.Fatalf("replay: %d %v", code, body)
	}
	buy["quantity"] = 3
	if code, body = c.do("POST", "/store/purchase", A, buy); code != 422 {
		t.Fatalf("reuse: %d %v", code, body)
	}
	big := map[string]any{"item_template_id": "sword", "quantity": 100, "idempotency_key": "http-key-2", "currency": "gems"}
	if code, body = c.do("POST", "/store/purchase", A, big); code != 409 || body["error"].(map[string]any)["code"] != "insufficient_funds" {
		t.Fatalf("insufficient: %d %v", code, body)
	}
	if code, _ = c.do("POST", "/store/purchase", A, map[string]any{"item_template_id": "sword", "quantity": 1, "idempotency_key": "http-key-3", "extra": 1}); code != 400 {
		t.Fatalf("unknown field: %d", code)
	}
	// Inventory visibility: bob's is private, alice's too until she opts in.
	if code, _ = c.do("GET", "/inventory/"+A, B, nil); code != 404 {
		t.Fatalf("private inventory visible: %d", code)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE players SET public_inventory = true WHERE id = $1`, alice); err != nil {
		t.Fatal(err)
	}
	if code, body = c.do("GET", "/inventory/"+A, B, nil); code != 200 || len(body["items"].([]any)) != 1 {
		t.Fatalf("public inventory: %d %v", code, body)
	}
	if code, body = c.do("GET", "/inventory/me", A, nil); code != 200 || len(body["items"].([]any)) != 1 {
		t.Fatalf("own inventory: %d %v", code, body)
	}
	// Equip / unequip / consume.
	if code, body = c.do("POST", "/inventory/"+itemID+"/equip", A, nil); code != 200 || body["equipped"] != true {
		t.Fatalf("equip: %d %v", code, body)
	}
	if code, _ = c.do("POST", "/inventory/"+itemID+"/equip", B, nil); code != 404 {
		t.Fatalf("equip someone else's: %d", code)
	}
	if code, _ = c.do("POST", "/inventory/"+itemID+"/consume", A, nil); code != 409 {
		t.Fatalf("consume a sword: %d", code)
	}
	if code, body = c.do("POST", "/inventory/"+itemID+"/unequip", A, nil); code != 200 || body["equipped"] != false {
		t.Fatalf("unequip: %d %v", code, body)
	}
	code, body = c.do("POST", "/store/purchase", A, map[string]any{"item_template_id": "potion", "quantity": 3, "idempotency_key": "http-key-4"})
	if code != 201 {
		t.Fatalf("potion: %d %v", code, body)
	}
	potion := body["inventory_item_id"].(string)
	if code, body = c.do("POST", "/inventory/"+potion+"/consume", A, map[string]any{"quantity": 2}); code != 200 || body["quantity"].(float64) != 1 {
		t.Fatalf("consume: %d %v", code, body)
	}
	if code, _ = c.do("POST", "/inventory/"+potion+"/consume", A, map[string]any{"quantity": 2}); code != 409 {
		t.Fatalf("over-consume: %d", code)
	}
	// A free item still writes a ledger row and a zero-balance wallet row.
	code, body = c.do("POST", "/store/purchase", A, map[string]any{"item_template_id": "free_hat", "quantity": 1, "idempotency_key": "http-key-5"})
	if code != 201 || body["price"].(float64) != 0 {
		t.Fatalf("free: %d %v", code, body)
	}
	checkLedger(t, pool, alice, "gold")
	checkLedger(t, pool, alice, "gems")
}
