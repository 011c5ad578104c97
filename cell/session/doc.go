// Package session owns a cell's game sessions: the live state in the
// cell's Redis (with a TTL, read by the relay's SessionChecker), the
// history in game_sessions / game_session_players (written through
// db.RunTx), the session events on the cell's match stream
// (match.found, session.started, session.ended, each published with a
// Nats-Msg-Id so a retry never duplicates one) and the consumer of the
// DGSs' match results that ends sessions. The Restorer rebuilds the live
// keys of running sessions from game_sessions when Redis lost them (a
// restart), so running matches keep accepting reconnects. It also
// provides the relay's Redis-backed ReplayGuard, which after such a loss
// refuses tokens minted before its Redis started.
package session
