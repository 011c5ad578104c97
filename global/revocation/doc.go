// Package revocation carries the global layer's token revocations to the
// cells. Logout, refresh-token reuse and erasure call Revoke, which
// publishes an events.Revocation on NATS (every cell adds it to its
// verifier's deny list at once) and keeps it until the last token it can
// match has expired, so a cell that starts later gets the current list by
// request (events.RevocationListSubject).
package revocation
