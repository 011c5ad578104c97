// Package sdk is the lifecycle SDK a dedicated game server embeds, modelled
// on Agones' SDK but spoken over the cell's NATS (subjects and payloads in
// proto/events):
//
//   - health: a DGSHealth heartbeat every HealthInterval on
//     events.DGSHealthSubject(cell), carrying the current state
//     (scheduled → ready → allocated → ready … → shutdown), the game address
//     and the session id while allocated; every state change is published
//     at once as well;
//   - allocation: requests on events.DGSAllocateSubject(cell, id) carrying an
//     events.Allocation, answered with events.AllocationReply. Only a Ready
//     server accepts, and only if the game's allocation handler does; a
//     repeated request for the session it already holds is answered OK again
//     (the cell may retry after a lost reply);
//   - shutdown requests on events.DGSShutdownSubject(cell, id), passed to the
//     game's handler (which decides when to stop: the contract is "after the
//     current match");
//   - ReportResult: the match result on JetStream subject
//     events.MatchResultSubject(cell) with Nats-Msg-Id = session id, so
//     retries (and a second call) are stored once within the stream's
//     duplicate window. The stream events.MatchStream(cell) is created when
//     missing, placed in the NATS cluster named after the cell.
//
// One goroutine (Run) owns the subscriptions and the heartbeat ticker; the
// handlers run on it, so they must not block for long.
package sdk
