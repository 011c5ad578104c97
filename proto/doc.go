// Package proto holds cellgrid's public wire contracts, the ones that cross
// a process boundary and that a game server or client in another module
// implements or imports:
//
//   - proto/events: NATS subjects, JetStream streams and the JSON events on
//     them (DGS lifecycle, allocations, match results, telemetry, heartbeats);
//   - proto/connecttoken: the signed token a player presents to the relay
//     and the DGS;
//   - proto/packet: the relay's control datagrams (HELLO, WELCOME, REJECT,
//     PING, PONG);
//   - proto/wire: the game messages carried over KCP between client and DGS;
//   - proto/natscreds: the NATS credential format and the reply-inbox
//     convention a game server connects with.
//
// docs/protocol.md documents them byte by byte. These packages import only
// the standard library and small codecs (proto/events also names JetStream
// stream configuration, so it imports the NATS client; proto/natscreds
// reads the .creds format with the NATS JWT codec).
package proto
