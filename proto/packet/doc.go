// Package packet is the relay's control-packet wire format: HELLO (a
// connect token), WELCOME, REJECT, and the PING/PONG latency beacon, all
// behind a 4-byte magic that no KCP segment of cellgrid uses (KCP conv
// ReservedConv is never chosen). It is the small contract the relay, the
// DGS and the client SDK share, with no dependencies beyond the connect
// token, so clients import it without importing the relay server.
package packet
