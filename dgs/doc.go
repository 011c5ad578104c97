// Package dgs is the dedicated game server (DGS) of cellgrid: the process a
// cell's fleet keeps warm (Ready), allocates to one match at a time
// (Allocated), and recycles or stops afterwards.
//
// The folder owns two packages besides this one:
//
//   - dgs/sdk: the lifecycle SDK, like Agones' SDK: Ready, allocation
//     requests, health heartbeats, shutdown requests and exactly-once match
//     result publishing, all over the cell's NATS (proto/events).
//   - dgs/arena: a sample server-authoritative arena shooter speaking the
//     game protocol proto/wire (the client side is client/gameconn): a kcp-go
//     listener on a socket passed in from outside, one goroutine owning the
//     match state, input validation, snapshots, match end.
//
// This package glues them: RunServer is what `cellgrid dgs` calls. The DGS
// knows nothing about Nomad or any other launcher: it is told its cell, id
// and NATS URL, announces itself on NATS, and the cell's fleet does the rest.
package dgs
