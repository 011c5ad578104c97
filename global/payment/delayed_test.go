package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/payment"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestStripeDelayedPayment: a checkout completed with payment_status unpaid
// (or none at all) credits nothing; async_payment_succeeded credits it,
// exactly once even when the completed event is redelivered as paid and the
// success event is replayed; async_payment_failed credits nothing and is
// recorded.
func TestStripeDelayedPayment(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	p, err := payment.New(payment.Config{StripeWebhookSecret: secret, Currencies: []string{"gems"}, Now: func() time.Time { return now }},
		payment.Deps{DB: d.Pool})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var player string
	if err := d.Pool.QueryRow(ctx, `INSERT INTO players (username) VALUES ('delayed') RETURNING id::TEXT`).Scan(&player); err != nil {
		t.Fatal(err)
	}
	send := func(body []byte) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+"/payments/stripe/webhook", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", payment.SignatureHeader(secret, now, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	balance := func() (bal, ledger int64) {
		_ = d.Pool.QueryRow(ctx, `SELECT coalesce(sum(balance),0) FROM wallet_balances WHERE player_id=$1 AND currency='gems'`, player).Scan(&bal)
		_ = d.Pool.QueryRow(ctx, `SELECT coalesce(sum(amount),0) FROM transactions WHERE player_id=$1 AND currency='gems'`, player).Scan(&ledger)
		return
	}
	expect := func(step string, bal int64) {
		t.Helper()
		if b, l := balance(); b != bal || l != bal {
			t.Fatalf("%s: balance %d ledger %d, want %d", step, b, l, bal)
		}
	}

	// Completed, unpaid: 200 (Stripe must not retry), nothing credited.
	if code, out := send(checkoutEvent("evt_c1", "checkout.session.completed", "cs_delayed", "unpaid", player, 300)); code != 200 || out["applied"] != false {
		t.Fatalf("completed unpaid: %d %v", code, out)
	}
	expect("completed unpaid", 0)
	// Completed without a payment status: refused, nothing credited.
	if code, out := send(checkoutEvent("evt_c0", "checkout.session.completed", "cs_nostatus", "", player, 300)); code != 422 {
		t.Fatalf("completed without payment_status: %d %v", code, out)
	}
	expect("completed without status", 0)

	// The delayed payment succeeds: credited once.
	succeeded := checkoutEvent("evt_s1", "checkout.session.async_payment_succeeded", "cs_delayed", "paid", player, 300)
	if code, out := send(succeeded); code != 200 || out["applied"] != true {
		t.Fatalf("async succeeded: %d %v", code, out)
	}
	expect("async succeeded", 300)
	// Replayed, and another event for the same session saying paid: no second credit.
	if code, out := send(succeeded); code != 200 || out["applied"] != false {
		t.Fatalf("replay: %d %v", code, out)
	}
	if code, out := send(checkoutEvent("evt_c1b", "checkout.session.completed", "cs_delayed", "paid", player, 300)); code != 200 || out["applied"] != false {
		t.Fatalf("second paid event for the session: %d %v", code, out)
	}
	expect("replays", 300)

	// Another checkout whose delayed payment fails: nothing credited, recorded.
	if code, _ := send(checkoutEvent("evt_c2", "checkout.session.completed", "cs_fails", "unpaid", player, 700)); code != 200 {
		t.Fatal(code)
	}
	if code, out := send(checkoutEvent("evt_f2", "checkout.session.async_payment_failed", "cs_fails", "unpaid", player, 700)); code != 200 || out["payment"] != "failed" {
		t.Fatalf("async failed: %d %v", code, out)
	}
	expect("async failed", 300)
	var recorded bool
	if err := d.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM applied_events WHERE consumer = 'stripe-payment-failed' AND event_id = 'cs_fails')`).Scan(&recorded); err != nil || !recorded {
		t.Fatalf("failed payment not recorded: %v %v", recorded, err)
	}
	// A success event claiming unpaid is malformed.
	if code, _ := send(checkoutEvent("evt_s3", "checkout.session.async_payment_succeeded", "cs_other", "unpaid", player, 5)); code != 422 {
		t.Fatalf("succeeded but unpaid: %d", code)
	}
	expect("final", 300)
}
