// Package topology owns the map of cells a client can play in: regions,
// cells, their public endpoints (HTTP API, relay, probe beacon) and their
// health (healthy, draining, failed over). The global layer serves it at
// GET /topology; clients ping each beacon and join the best healthy cell.
// It never opens sockets to clients.
//
// With Consul (consul.go, discovery.go), processes register themselves
// through a Registrar (HTTP checks on /readyz, deregistered on a clean
// shutdown) and Registry.WatchConsul makes the Consul catalog of every
// datacenter the source of which cells exist and are alive, while the
// NATS heartbeats (Watch) still give draining and silence. A prepared
// query with NearestN failover answers from the nearest datacenter.
package topology
