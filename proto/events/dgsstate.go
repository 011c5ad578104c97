package events

import "fmt"

// DGSState is the lifecycle state of a dedicated game server, as in Agones.
// On the wire (DGSHealth.State) it is the lower-case JSON string of the
// constant. A DGS moves
//
//	Scheduled → Ready ⇄ Allocated → Shutdown
//
// and the cell's fleet marks it Unhealthy when its heartbeats stop or its
// process dies; only the fleet sets Unhealthy, a DGS may also report it.
type DGSState string

// DGS states. Values are part of the wire format: never rename.
const (
	// DGSScheduled: the process runs but is not ready for a match yet
	// (connecting to NATS, binding its game socket). The SDK's first state.
	DGSScheduled DGSState = "scheduled"
	// DGSReady: idle in the warm pool; the cell may send it an Allocation.
	DGSReady DGSState = "ready"
	// DGSAllocated: running the match named by DGSHealth.SessionID. Back to
	// Ready when the match ends, if the server can host another.
	DGSAllocated DGSState = "allocated"
	// DGSShutdown: stopping; it takes no new match and exits after its
	// current one. Final.
	DGSShutdown DGSState = "shutdown"
	// DGSUnhealthy: failed (missed heartbeats, process died, or reported by
	// the server itself). Final: the fleet stops and replaces it.
	DGSUnhealthy DGSState = "unhealthy"
)

// DGSStates lists every DGS state in lifecycle order.
var DGSStates = []DGSState{DGSScheduled, DGSReady, DGSAllocated, DGSShutdown, DGSUnhealthy}

// Valid reports whether s is one of the documented states.
func (s DGSState) Valid() bool {
	switch s {
	case DGSScheduled, DGSReady, DGSAllocated, DGSShutdown, DGSUnhealthy:
		return true
	}
	return false
}

// String returns the wire form of s.
func (s DGSState) String() string { return string(s) }

// ParseDGSState returns the state named s, or an error naming the unknown
// value.
func ParseDGSState(s string) (DGSState, error) {
	if st := DGSState(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("unknown DGS state %q", s)
}
