// Package fleet owns a cell's pool of dedicated game servers (DGS).
//
// Servers move through Agones-style states: Scheduled (launched, not yet
// heard from) → Ready (heartbeating on events.DGSHealthSubject, warm) →
// Allocated (running one match) → Shutdown; a server that misses its
// heartbeats, exits unexpectedly, or fails an allocation request becomes
// Unhealthy and is stopped and replaced.
//
// One goroutine (Run) owns the state transitions driven by heartbeats,
// process exits and the warm-buffer autoscaler; Allocate, called from the
// matchmaker's workers, only takes the mutex long enough to move one Ready
// server to Allocated, so a server is never handed to two matches. The DGS
// itself must also refuse a second allocation (events.AllocationReply.OK
// false), which keeps the guarantee across cell processes.
//
// Servers are started through a Launcher: LocalLauncher runs them as child
// processes (dev, tests); the Nomad launcher lives in jobs/. The fleet has
// one current Version (command and arguments); SetVersion rolls it out by
// replacing Ready servers of other versions while Allocated ones finish
// their match and are shut down when they report Ready again.
package fleet
