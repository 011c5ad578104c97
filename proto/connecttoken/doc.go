// Package connecttoken owns the connect token: the short-lived, Ed25519-signed
// ticket a cell mints for one player of one game session. The relay verifies
// it before binding a client address, and the dedicated game server verifies
// it again before admitting the player. It is the one wire type shared by
// cell, relay and dgs, so it lives here rather than in any of them.
package connecttoken
