// Package client is the Go client SDK of cellgrid, the code a game client
// (and `cellgrid bots`, and the end-to-end tests) uses for the whole player
// loop: fetch the topology from the global layer, ping each cell's UDP
// beacon, log in, join matchmaking at the best cell, wait for the session,
// then connect to the dedicated game server through the cell's relay over
// KCP and play.
//
// It speaks only the public contracts: the HTTP APIs (JSON), the relay's
// control packets (proto/packet) and the game wire protocol (proto/wire, spoken by client/gameconn).
// It never imports server internals.
package client
