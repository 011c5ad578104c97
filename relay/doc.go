// Package relay is the cell's UDP relay between game clients and dedicated
// game servers (DGS).
//
// It owns:
//
//   - the public UDP socket clients talk KCP over (the relay never terminates
//     KCP and never decodes game payloads: it forwards datagrams as opaque
//     bytes);
//   - the connect-token handshake: a client's HELLO carries the connect token
//     the cell minted (proto/connecttoken); the relay verifies signature
//     and expiry, asks a SessionChecker whether the game session is live and a
//     ReplayGuard whether the token's nonce is fresh, then binds the client's
//     address to a fresh upstream UDP socket connected to the token's DGS
//     address and answers WELCOME (or REJECT with a reason);
//   - per-session forwarding in both directions, one upstream socket per
//     binding, because kcp-go on the DGS keys sessions by remote ip:port;
//   - per-binding rate limits (packets/s and bytes/s), idle expiry, and the
//     MaxBindings cap;
//   - the UDP ping beacon: PING is answered with PONG to any sender, so clients
//     can measure latency to the cell before joining matchmaking.
//
// # What the DGS sees
//
// Through each binding's upstream socket the DGS first receives the client's
// HELLO datagram (for a HELLO_COOKIE: a HELLO with its token), so it can
// verify the token itself (and learn
// which player this ip:port is) before any KCP segment arrives; KCP follows.
// Every accepted HELLO is forwarded, including retransmissions and NAT
// rebinding HELLOs, so the DGS must treat a repeated HELLO for the same
// upstream address as idempotent. Because the upstream socket survives NAT
// rebinding, the DGS sees one stable address per player.
//
// # Replay and rebinding
//
// A binding belongs to a (session, player) pair; there is at most one per
// pair and at most one per client address. A HELLO whose token is valid and
// whose nonce is fresh creates the binding, or moves the existing binding of
// that pair to the sender's address. A HELLO whose nonce was already used is
// accepted only if a binding created by that very token still exists: it then
// moves that binding to the sender's address (NAT rebinding), even after the
// token's expiry, as long as the session is live. A used nonce whose binding
// expired or was closed is refused with packet.RejectReplayed.
//
// No binding moves to a new address on a HELLO alone: the relay answers a
// CHALLENGE carrying a stateless cookie (cookie.go: HMAC under a per-relay
// random key of the time, that address, the binding and the token's nonce),
// and moves the binding when that address sends HELLO_COOKIE echoing it
// within Config.ChallengeTTL (return routability). A HELLO replayed from a
// spoofed source therefore cannot redirect a player's (and the DGS's
// downstream) traffic to a third party. Tokens travel in clear: anyone who
// can read a client's traffic and receive at an address of their own can
// still move its binding there (as they could inject into its KCP stream
// anyway).
//
// # Stores
//
// Production wires SessionChecker and ReplayGuard to the cell's Redis (live
// session key lookup; SET nonce NX PX ttl). MemoryReplayGuard and
// StaticSessions are in-memory versions for tests and single-process dev.
//
// # Overload policy
//
// One goroutine reads the public socket. HELLOs first pass per-source token
// buckets (Config.HelloPerAddr per ip:port, HelloPerIP per IP, at most
// HelloSources tracked; over budget: dropped, reason hello_limited) and the
// token's cheap checks (length, version, key id, expiry: a stale token with
// no binding of its own is refused here, before Ed25519 and before the
// store); only then do they take a slot in a bounded queue served by
// Config.HandshakeWorkers; when the queue is full a HELLO is dropped (the
// client retransmits). A flood of forged HELLOs thus costs the read loop a
// map lookup each, and bound clients, served by the same loop, keep their
// traffic. Datagrams from unbound addresses that are not control
// packets are dropped before any allocation; over-limit datagrams of a binding
// are dropped; PINGs beyond the per-source and global beacon limits are
// dropped. Every drop is counted in relay_dropped_total{reason}.
package relay
