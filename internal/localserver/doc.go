// Package localserver runs real PostgreSQL and redis-server processes, and
// Nomad and Consul dev agents (v1.6.3 and v1.16.3, the last MPL-2.0
// releases, built by build/hashistack.sh into ToolsDir), in a private
// folder on free loopback ports, for `cellgrid dev` and the tests.
// It finds the binaries, initialises the data folder once (reusing it on the
// next start), drops root privileges for PostgreSQL (which refuses to run as
// root), and stops the processes on Close or when this process dies.
package localserver
