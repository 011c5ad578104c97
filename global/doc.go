// Package global wires the thin global layer of cellgrid into one HTTP
// server: auth (OIDC login, session JWTs, JWKS), player profiles, the store,
// wallet, inventory and ledger, achievements, cross-region leaderboards,
// telemetry sinks and the topology API. The domain logic lives in its
// subpackages (global/auth, global/profile, global/store, …); this package
// only builds them from one Config and runs them together. The global layer
// never runs matches and never talks to a DGS.
package global
