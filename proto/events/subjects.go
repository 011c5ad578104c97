package events

import (
	"fmt"
	"strings"
)

// Subjects are dot-separated; a cell id such as "eu-west-1" is a single token.

// DGSHealthSubject is the core-NATS subject on which one DGS publishes its
// DGSHealth heartbeat (about once a second). The DGS id is part of the
// subject so NATS permissions let a DGS speak only for itself; the fleet
// ignores a heartbeat whose body names another id.
func DGSHealthSubject(cell, dgsID string) string {
	return fmt.Sprintf("cellgrid.%s.dgs.%s.health", cell, dgsID)
}

// DGSHealthFilter matches every DGS heartbeat of a cell.
func DGSHealthFilter(cell string) string { return fmt.Sprintf("cellgrid.%s.dgs.*.health", cell) }

// DGSIDFromSubject returns the DGS id token of a DGS subject
// (cellgrid.<cell>.dgs.<id>.<verb>), or "".
func DGSIDFromSubject(subject string) string { return token(subject, 3) }

// DGSAllocateSubject is the request subject a DGS listens on; the cell sends
// an Allocation and waits for an AllocationReply.
func DGSAllocateSubject(cell, dgsID string) string {
	return fmt.Sprintf("cellgrid.%s.dgs.%s.allocate", cell, dgsID)
}

// DGSCancelSubject carries an AllocationCancel to one DGS.
func DGSCancelSubject(cell, dgsID string) string {
	return fmt.Sprintf("cellgrid.%s.dgs.%s.cancel", cell, dgsID)
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

// MatchResultSubject carries a MatchResult, published once by DGS dgsID
// with Nats-Msg-Id ResultMsgID. The DGS id in the subject is what NATS
// authenticated (a DGS may publish only on its own); consumers refuse a
// result whose session was not allocated to that DGS.
func MatchResultSubject(cell, dgsID string) string {
	return fmt.Sprintf("match.%s.result.%s", cell, dgsID)
}

// MatchResultFilter matches every result subject of a cell.
func MatchResultFilter(cell string) string { return fmt.Sprintf("match.%s.result.*", cell) }

// ResultDGSFromSubject returns the publishing DGS id of a result subject
// (match.<cell>.result.<dgs>), or "".
func ResultDGSFromSubject(subject string) string { return token(subject, 3) }

// ResultMsgID is the Nats-Msg-Id of a result: the session and the DGS, so
// a result forged by another DGS for the same session cannot take the
// real one's place in the de-duplication window.
func ResultMsgID(sessionID, dgsID string) string { return sessionID + "/" + dgsID }

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

// CellHeartbeatSubject carries a CellHeartbeat from cell id about once a
// second; it crosses the gateways to the global layer, which keeps the
// topology from it. Only the cell's own credential may publish on it, and
// the topology ignores a heartbeat whose body names another cell.
func CellHeartbeatSubject(id string) string { return fmt.Sprintf("cellgrid.cells.%s.heartbeat", id) }

// CellHeartbeatFilter matches every cell's heartbeat.
const CellHeartbeatFilter = "cellgrid.cells.*.heartbeat"

// CellIDFromSubject returns the cell id token of a cellgrid.cells.<id>.*
// subject, or "".
func CellIDFromSubject(subject string) string { return token(subject, 2) }

// RevocationSubject carries a Revocation from the global layer to every
// cell (core NATS, crossing the gateways).
const RevocationSubject = "cellgrid.auth.revoked"

// RevocationListSubject is a request a starting cell sends to the global
// layer; the reply is a RevocationList of every revocation that has not
// expired yet.
const RevocationListSubject = "cellgrid.auth.revocations"

// token returns the i-th dot-separated token of subject, or "".
func token(subject string, i int) string {
	for n := 0; ; n++ {
		j := strings.IndexByte(subject, '.')
		if n == i {
			if j < 0 {
				return subject
			}
			return subject[:j]
		}
		if j < 0 {
			return ""
		}
		subject = subject[j+1:]
	}
}

// CellDrainSubject asks a cell to drain (body "drain") or to take new
// tickets again (body "undrain"); the cell replies with its new state.
func CellDrainSubject(cell string) string { return fmt.Sprintf("cellgrid.cells.%s.drain", cell) }
