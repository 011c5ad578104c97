// Package wan emulates a wide-area network on loopback, in user space (this
// machine's kernel has no netem). A Link is a UDP forwarder placed between
// clients and one upstream (a region's relay and probe beacon): every
// datagram is held for the path's one-way delay plus jitter, and may be
// lost, reordered or blackholed, independently in each direction. Each
// client address gets its own upstream socket, so the upstream still sees
// one source per client, as it would across a real network.
//
// TCP paths (NATS gateways between regions, the database, Redis) go
// through Proxy, a thin wrapper over toxiproxy embedded as a library:
// latency, cut and heal.
package wan
