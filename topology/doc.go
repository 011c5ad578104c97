// Package topology owns the map of cells a client can play in: regions,
// cells, their public endpoints (HTTP API, relay, probe beacon) and their
// health (healthy, draining, failed over). The global layer serves it at
// GET /topology; clients ping each beacon and join the best healthy cell.
// It never opens sockets to clients.
package topology
