// Package payment credits real-money top-ups to wallets. A Gateway verifies
// and decodes a provider's webhook; Stripe is the implementation: POST
// /payments/stripe/webhook checks the Stripe-Signature header (HMAC-SHA256
// of "t.payload" with the endpoint secret, any v1 may match, |now-t| ≤ the
// tolerance, 5 minutes by default; vector_test.go pins a vector computed
// per Stripe's documentation).
//
// A checkout is credited only when it is actually paid, exactly once per
// checkout session, whichever event says so: checkout.session.completed
// with payment_status "paid" (or "no_payment_required"), or, for delayed
// payment methods, checkout.session.async_payment_succeeded after a
// completed event with payment_status "unpaid" (which credits nothing). A
// completed event without a known payment_status is refused (422).
// checkout.session.async_payment_failed credits nothing and is recorded
// (applied_events, consumer "stripe-payment-failed", the session id).
// Credits are idempotent per event id (consumer "stripe-webhook") and per
// session (consumer "stripe-checkout", ledger key "stripe:checkout:<session>"),
// all in one db.RunTx.
//
// The session's metadata carries player_id, the in-game currency and
// optionally credit_amount (minor units of that currency); without it
// amount_total is credited. Metadata is set by our server when it creates
// the Checkout Session, and the signature covers it.
package payment
