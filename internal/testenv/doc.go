// Package testenv is the one place tests get real servers from: a private
// PostgreSQL per test binary (a fresh, migrated database per test), a private
// redis-server per test, embedded NATS superclusters, and helpers that wait
// with deadlines instead of sleeping. A missing server binary fails the test
// with the command that installs it; nothing is ever skipped.
//
// Packages that use PostgreSQL call testenv.Main from TestMain so the shared
// server is stopped and its folder removed when the binary ends.
package testenv
