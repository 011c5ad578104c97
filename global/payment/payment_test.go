package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/global/payment"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const secret = "whsec_test_secret"

func event(id, player string, amount int64) []byte {
	return checkoutEvent(id, "checkout.session.completed", "cs_"+id, "paid", player, amount)
}

func checkoutEvent(id, typ, session, status, player string, amount int64) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "type": typ,
		"data": map[string]any{"object": map[string]any{
			"id": session, "amount_total": 499, "currency": "usd", "payment_status": status,
			"metadata": map[string]string{"player_id": player, "currency": "gems", "credit_amount": fmt.Sprint(amount)},
		}},
	})
	return b
}

func TestStripeWebhook(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p, err := payment.New(payment.Config{StripeWebhookSecret: secret, Currencies: []string{"gold", "gems"}, Now: func() time.Time { return now }},
		payment.Deps{DB: d.Pool})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	player := testenv.NewPlayer(t, d.Pool, "payer")
	send := func(body []byte, sig string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/payments/stripe/webhook", bytes.NewReader(body))
		if sig != "" {
			req.Header.Set("Stripe-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	balance := func() (bal, ledger int64) {
		_ = d.Pool.QueryRow(ctx, `SELECT coalesce(sum(balance),0) FROM wallet_balances WHERE player_id=$1 AND currency='gems'`, player).Scan(&bal)
		_ = d.Pool.QueryRow(ctx, `SELECT coalesce(sum(amount),0) FROM transactions WHERE player_id=$1 AND currency='gems'`, player).Scan(&ledger)
		return
	}
	body := event("evt_1", player, 500)
	refused := map[string]string{
		"no header":      "",
		"forged":         payment.SignatureHeader("whsec_wrong", now, body),
		"stale":          payment.SignatureHeader(secret, now.Add(-6*time.Minute), body),
		"future":         payment.SignatureHeader(secret, now.Add(6*time.Minute), body),
		"garbage":        "t=abc,v1=zz",
		"tampered body":  payment.SignatureHeader(secret, now, event("evt_1", player, 50000)),
		"no v1":          fmt.Sprintf("t=%d", now.Unix()),
		"v0 scheme only": fmt.Sprintf("t=%d,v0=%s", now.Unix(), "00"),
	}
	for name, sig := range refused {
		if code := send(body, sig); code != 400 {
			t.Fatalf("%s: %d", name, code)
		}
	}
	if b, _ := balance(); b != 0 {
		t.Fatalf("credited by a refused webhook: %d", b)
	}
	// Valid, with a rotated-out secret's signature alongside: credited once
	// even when Stripe retries concurrently.
	sig := payment.SignatureHeader(secret, now.Add(-4*time.Minute), body) + ",v1=deadbeef"
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if code := send(body, sig); code != 200 {
				t.Errorf("valid: %d", code)
			}
		})
	}
	wg.Wait()
	if b, l := balance(); b != 500 || l != 500 {
		t.Fatalf("after replays: balance %d ledger %d", b, l)
	}
	// Another event is another credit; an unknown player is refused (Stripe retries).
	body2 := event("evt_2", player, 25)
	if code := send(body2, payment.SignatureHeader(secret, now, body2)); code != 200 {
		t.Fatal(code)
	}
	body3 := event("evt_3", uuid.NewString(), 25)
	if code := send(body3, payment.SignatureHeader(secret, now, body3)); code != 422 {
		t.Fatalf("unknown player: %d", code)
	}
	other, _ := json.Marshal(map[string]any{"id": "evt_4", "type": "customer.created", "data": map[string]any{"object": map[string]any{}}})
	if code := send(other, payment.SignatureHeader(secret, now, other)); code != 200 {
		t.Fatalf("ignored type: %d", code)
	}
	if b, l := balance(); b != 525 || l != 525 {
		t.Fatalf("final: balance %d ledger %d", b, l)
	}
}
