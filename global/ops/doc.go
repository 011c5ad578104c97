// Package ops is the operators' side of the global layer: roles (player,
// support, admin) resolved on the server for every request, the /ops
// console (one HTML page and a small script, embedded, no build step, no
// CDN) fed live by server-sent events, the admin API behind it (drain and
// undrain a cell over NATS, page through the audit log) and the LiveOps
// actions (wallet grants and revocations through the store's ledger).
// Every admin action writes a row to the audit log (global/audit).
//
// Roles are looked up server-side, not carried in the access token: a
// demoted admin loses the role on the next request instead of when the
// token expires, cells (which never serve ops routes) need not know about
// roles, and the token format stays as it is. Admin traffic is a handful
// of requests, so the lookup (configuration, then at most two indexed
// queries) costs nothing that matters.
package ops
