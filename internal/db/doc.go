// Package db owns cellgrid's access to the database of record: opening pgx
// pools, the embedded schema migrations (run by `cellgrid migrate` and checked
// at start), the one transaction helper every write goes through (correct on
// both CockroachDB and PostgreSQL), and the CockroachDB-only multi-region DDL.
//
// The SQL in migrations runs unchanged on CockroachDB and PostgreSQL: UUID
// keys, INSERT … ON CONFLICT, no sequences on hot tables, no triggers,
// procedures, database pub/sub notifications or engine-specific types.
package db
