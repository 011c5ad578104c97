// Package gameconn is the Go game client for the proto/wire protocol over
// KCP, end to end through the relay.
//
// # The client
//
// Dial sends the relay HELLO (relay control packet carrying the connect
// token) from the socket it will use for KCP, opens a KCP session with a
// conversation id other than packet.ReservedConv, sends JOIN and waits for
// ACCEPT or REFUSE, re-sending HELLO until then (a HELLO the relay forwards
// may be lost; the relay and the DGS treat repeats as harmless).
//
// # Rebinding
//
// The relay binds the address a HELLO came from and drops other datagrams
// as unbound, silently. When a NAT gives the client a new address mid-match,
// only a new HELLO with the same token moves the binding, so once
// connected the client re-sends HELLO whenever nothing has arrived for
// ClientConfig.RebindAfter. Rebind moves the session to a new local socket
// and sends HELLO from it at once.
package gameconn
