// Package testenv is the one place tests get real servers from: a private
// PostgreSQL per test binary (a fresh, migrated database per test), a private
// redis-server per test, embedded NATS superclusters, real Nomad and Consul
// dev agents (SharedHashiStack: one pair per test binary; NewNomad,
// NewConsul: one per test; JoinNomadRegions, JoinConsulWAN), the cellgrid
// binary built once (CellgridBinary), and helpers that wait with deadlines
// instead of sleeping. A missing server binary fails the test
// with the command that installs it; nothing is ever skipped.
//
// Packages that use PostgreSQL or the shared agents call testenv.Main from TestMain so the shared
// server is stopped and its folder removed when the binary ends.
package testenv
