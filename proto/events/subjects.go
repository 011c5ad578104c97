package events

import "fmt"

// Subjects are dot-separated; a cell id such as "eu-west-1" is a single token.

// DGSHealthSubject is the core-NATS subject on which every DGS of a cell
// publishes a DGSHealth heartbeat (about once a second).
func DGSHealthSubject(cell string) string { return fmt.Sprintf("cellgrid.%s.dgs.health", cell) }

// DGSAllocateSubject is the request subject a DGS listens on; the cell sends
// an Allocation and waits for an AllocationReply.
func DGSAllocateSubject(cell, dgsID string) string {
	return fmt.Sprintf("cellgrid.%s.dgs.%s.allocate", cell, dgsID)
}

// DGSShutdownSubject asks a DGS to stop once its current match (if any) ends.
func DGSShutdownSubject(cell, dgsID string) string {
	return fmt.Sprintf("cellgrid.%s.dgs.%s.shutdown", cell, dgsID)
}

// Stream names and subjects on JetStream. Each cell owns one stream per kind,
// placed in its own NATS cluster; the global layer sources them.
const (
	// MatchStreamPrefix + cell id names the cell's match stream.
	MatchStreamPrefix = "MATCH_"
	// TelemetryStreamPrefix + cell id names the cell's telemetry stream.
	TelemetryStreamPrefix = "TELEMETRY_"
)

// MatchStream is the JetStream stream name for a cell's match events.
func MatchStream(cell string) string { return MatchStreamPrefix + streamToken(cell) }

// TelemetryStream is the JetStream stream name for a cell's telemetry.
func TelemetryStream(cell string) string { return TelemetryStreamPrefix + streamToken(cell) }

// MatchSubjects is the subject filter of a cell's match stream.
func MatchSubjects(cell string) string { return fmt.Sprintf("match.%s.>", cell) }

// MatchResultSubject carries a MatchResult, published once by the DGS with
// Nats-Msg-Id set to the session id.
func MatchResultSubject(cell string) string { return fmt.Sprintf("match.%s.result", cell) }

// SessionEventSubject carries SessionEvent (kind = found|started|ended).
func SessionEventSubject(cell, kind string) string {
	return fmt.Sprintf("match.%s.session.%s", cell, kind)
}

// TelemetrySubject carries TelemetryBatch messages of one cell.
func TelemetrySubject(cell string) string { return fmt.Sprintf("telemetry.%s.events", cell) }

// TelemetrySubjects is the subject filter of a cell's telemetry stream.
func TelemetrySubjects(cell string) string { return fmt.Sprintf("telemetry.%s.>", cell) }

// streamToken maps a cell id to characters allowed in stream names.
func streamToken(cell string) string {
	b := []byte(cell)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// CellHeartbeatSubject carries a CellHeartbeat from every cell about once a
// second; it crosses the gateways to the global layer, which keeps the
// topology from it.
const CellHeartbeatSubject = "cellgrid.cells.heartbeat"

// CellDrainSubject asks a cell to drain (body "drain") or to take new
// tickets again (body "undrain"); the cell replies with its new state.
func CellDrainSubject(cell string) string { return fmt.Sprintf("cellgrid.cells.%s.drain", cell) }
