// Package supervise runs a process's long-lived components together, in
// the errgroup shape: each component is a named Run(ctx) func; the first
// one that fails cancels the others, and Run returns every failure joined
// (errors.Join), each prefixed with its component's name. A component that
// returns nil before ctx ends has stopped without being asked to, which is
// a failure too. A clean cancel of ctx returns nil.
//
// Health reports which components have died while the rest wind down, so
// a readiness check (httpapi.Check) can turn red as soon as a background
// part fails, not only when the process exits.
package supervise
