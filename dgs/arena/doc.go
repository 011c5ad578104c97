// Package arena is cellgrid's sample server-authoritative game: a top-down
// arena shooter served over KCP (proto/wire), one match at a time.
//
// # Sockets and admission
//
// The server is given one UDP socket (net.PacketConn) from outside and owns
// it from then on. kcp-go is served on that socket through a filter that
// consumes relay control packets: a relay HELLO (the client's connect
// token, forwarded by the relay through the client's own upstream socket
// before any KCP) is verified against the current allocation (signature
// with the allocation's connect keys, session, player in the roster,
// expiry) and pre-authorises its source address for that player. KCP
// datagrams from addresses without such a HELLO are dropped before kcp-go
// sees them, so no KCP session can exist for an unverified address. A
// repeated HELLO from an authorised address (retransmission, NAT rebinding
// relayed through the same upstream socket) is harmless: the same token is
// not even re-verified, and an expired token may refresh its own address.
//
// The first frame of each KCP stream must be JOIN carrying the same token,
// verified again (a different player than the HELLO's is refused). A
// player joining again (new stream) replaces its older stream.
//
// # The match
//
// One goroutine owns the match state and ticks at Config.TickRate. Each
// player's inputs are queued by its reader goroutine in a bounded channel;
// when it is full the oldest input is dropped and counted (InputsDropped).
// Each tick consumes at most one input per player, which bounds movement
// per tick by construction. Every input is validated: its sequence number
// must increase (else it is dropped and flagged), a move longer than MaxStep
// is clamped to MaxStep (flagged), a move leaving the arena is clamped to it
// (flagged: a client predicting correctly never asks), a shot during the
// fire cooldown is ignored (flagged). Every tick a SNAPSHOT goes to every
// connected player with that player's last processed input seq. Outgoing
// frames go through a bounded per-player queue drained by a writer
// goroutine; when a slow client's queue is full its oldest frame is dropped
// (a newer snapshot supersedes it), so a slow client never stalls the tick.
//
// The match clock starts when every player has joined (or WaitForPlayers has
// passed with at least one). It ends at ScoreLimit, TimeLimit, or when nobody
// is connected for AbandonAfter (or nobody joined at all): END goes to every
// player, then Config.OnMatchEnd receives the events.MatchResult once.
package arena
