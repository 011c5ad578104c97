// Package auth is the global layer's login service: it verifies OpenID
// Connect ID tokens from the configured issuers with go-oidc (or, in
// development, accepts a guest device id), upserts the Player and its auth
// identity, and issues short-lived EdDSA access JWTs plus rotating opaque
// refresh tokens.
//
// Routes (Register):
//
//	POST /auth/login              {"provider":"oidc","id_token":…} | {"provider":"device","device_id":…}
//	POST /auth/refresh            {"refresh_token":…}
//	POST /auth/logout             bearer + {"refresh_token":…} (revokes the family)
//	GET  /.well-known/jwks.json   the public signing keys
//
// Signing keys live in the signing_keys table, their private halves sealed
// with AES-256-GCM under Config.EncryptionKey, so every global instance (and
// a restarted one) signs with the same keys. Keys are numbered
// (generation); an instance that finds none, or finds the newest older than
// Config.KeyLifetime, inserts the next generation with ON CONFLICT DO
// NOTHING, so concurrent instances agree on one key per generation. A new
// key is published in the JWKS Config.KeyPublishAhead before any instance
// signs with it, and a replaced key stays published until every token it
// signed has expired.
//
// Refresh tokens are 256-bit random strings stored only as SHA-256 hashes.
// Each login starts a family; each refresh rotates the token inside the
// family. Presenting a token that was already rotated is treated as theft:
// the whole family is revoked (OAuth 2.0 Security BCP, refresh token reuse
// detection).
//
// POST /auth/login and POST /auth/refresh are rate-limited per source
// address and per identity (a device id, a verified OIDC issuer+subject, a
// refresh token): 429 rate_limited with Retry-After (ratelimit.go). The
// per-identity keys are things only the identity's holder can present, so
// no one can lock another player out.
//
// Emails are stored sealed (AES-256-GCM, bound to the player id) in
// players.email_enc; Sealer and EmailAAD are exported so the profile
// package can decrypt them for a GDPR export.
package auth
