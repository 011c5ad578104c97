// Package payment credits real-money top-ups to wallets. A Gateway verifies
// and decodes a provider's webhook; Stripe is the implementation: POST
// /payments/stripe/webhook checks the Stripe-Signature header (HMAC-SHA256
// of "t.payload" with the endpoint secret, any v1 may match, |now-t| ≤ the
// tolerance, 5 minutes by default) and credits the wallet for
// checkout.session.completed once per event id (applied_events plus the
// ledger key "stripe:<event id>" in one db.RunTx).
//
// The session's metadata carries player_id, the in-game currency and
// optionally credit_amount (minor units of that currency); without it
// amount_total is credited. Metadata is set by our server when it creates
// the Checkout Session, and the signature covers it.
package payment
