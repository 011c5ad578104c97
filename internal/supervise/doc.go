// Package supervise runs a process's long-lived components together and
// gives each component the lifecycle of the component shape.
//
// Group is the errgroup shape: each component is a named Run(ctx) func;
// the first one that fails cancels the others, and Run returns every
// failure joined (errors.Join), each prefixed with its component's name.
// A component that returns nil before ctx ends has stopped without being
// asked to, which is a failure too. A clean cancel of ctx returns nil.
// Group.Check reports the components that died while the rest wind down,
// so readiness (an httpapi.Check) turns red as soon as a background part
// fails; the HTTP server, added with AddLingering, keeps answering for a
// while after such a failure so health checkers see /readyz red before
// the listener closes and the process exits non-zero.
//
// Lifecycle gives a component a Close that stops its running Run, waits
// for it, and is safe to call twice.
package supervise
