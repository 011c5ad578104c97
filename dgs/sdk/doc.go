// Package sdk is the lifecycle SDK a dedicated game server embeds, modelled
// on Agones' SDK but spoken over the cell's NATS (subjects and payloads in
// proto/events):
//
//   - connection: the server connects with the NATS credential its cell
//     minted at launch (NATSOptions(os.Getenv(CredsEnv))); it may publish
//     only its own heartbeat and results and receive only its own requests;
//   - health: a DGSHealth heartbeat every HealthInterval on
//     events.DGSHealthSubject(cell, id), carrying the current state
//     (scheduled → ready → allocated → ready … → shutdown), the game address
//     and the session id while allocated; every state change is published
//     at once as well;
//   - allocation: requests on events.DGSAllocateSubject(cell, id) carrying an
//     events.Allocation, answered with events.AllocationReply. Only a Ready
//     server accepts, and only if the game's allocation handler does; a
//     repeated request for the session it already holds is answered OK again
//     (the cell may retry after a lost reply). The reply echoes the
//     allocation's AllocationID; an allocation is refused after its
//     Deadline, and one the game accepted too late, or that the cell
//     cancels on events.DGSCancelSubject, is withdrawn (HandleCancel) and
//     its result is not published;
//   - shutdown requests on events.DGSShutdownSubject(cell, id), passed to the
//     game's handler (which decides when to stop: the contract is "after the
//     current match");
//   - ReportResult: the match result on JetStream subject
//     events.MatchResultSubject(cell, id) with Nats-Msg-Id =
//     events.ResultMsgID(session, id), so retries (and a second call) are
//     stored once within the stream's duplicate window. The stream
//     events.MatchStream(cell) is the cell's (a server's credential may
//     not create it).
//
// One goroutine (Run) owns the subscriptions and the heartbeat ticker; the
// handlers run on it, so they must not block for long.
package sdk
