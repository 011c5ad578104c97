// Package store owns the in-game economy of record: the item catalog
// (ItemTemplate, seeded from config), wallets (one balance per currency),
// the ledger (one transactions row per balance change, balance == SUM of the
// ledger) and inventories.
//
// Invariants:
//   - every balance change happens in a db.RunTx transaction that also writes
//     exactly one ledger row, keyed by (player, idempotency key, currency);
//   - a balance never goes negative (the debit is a conditional UPDATE and the
//     table has CHECK (balance >= 0));
//   - a purchase replayed with the same idempotency key returns the first
//     result and debits nothing; the same key with a different body is 422.
//
// Other global packages credit wallets through Credit (match rewards, payment
// top-ups) inside their own transaction; auth calls GrantStarting inside the
// player-creating transaction.
package store
