// Package httpapi owns the HTTP plumbing every cellgrid server shares: the
// JSON error envelope {"error":{"code","message"}} and the one place errors
// map to status codes, strict size-limited JSON decoding, /healthz, /readyz
// (running the server's dependency checks) and Prometheus /metrics, and a
// Server with the component lifecycle (New, Run, Close safe twice) on a listener whose address can
// be read back.
package httpapi
