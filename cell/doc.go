// Package cell wires one regional cell: the cell HTTP API (matchmaking
// join/status/cancel and parties behind the access-token middleware,
// /healthz, /readyz, /metrics; a party forms by invitation and acceptance,
// see party.go), the matchmaker (cell/matchmaker), the DGS fleet (cell/fleet),
// game sessions (cell/session) and the KCP/UDP relay (relay), all on the
// cell's Redis, NATS and the shared database.
//
// cmd/cellgrid builds a Config (DefaultConfig plus flags), the Deps, then
// calls New and Run:
//
//	c, err := cell.New(cfg, cell.Deps{DB: pool, Redis: rd, NATS: nc, Verifier: v, Launcher: &fleet.LocalLauncher{}})
//	err = c.Run(ctx) // until ctx ends
//
// A matched ticket becomes a session in handleMatch: match.found, a Ready
// server allocated from the fleet, the session recorded (Redis, database,
// session.started), one connect token per player minted with the cell's
// Ed25519 key for the DGS's game address, and the tickets marked ready.
// Clients then read relay address and token from GET /matchmaking/status.
package cell
