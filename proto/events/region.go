package events

import "time"

// RegionBucket is the JetStream key-value bucket holding the regions an
// operator failed over: one key per failed-over region (the region name),
// whose value is a RegionFailover; a restore deletes the key. The global
// layer creates it (placed in its own cluster, file storage) and is the
// only writer; cells and the topology watch it. It is the durable, sticky
// record: a failed region's heartbeats never change it.
const RegionBucket = "CELLGRID_REGIONS"

// Region states.
const (
	RegionActive     = "active"
	RegionFailedOver = "failed_over"
)

// RegionFailover is the value stored under a failed-over region's key.
type RegionFailover struct {
	Region string `json:"region"`
	// To is the region the operator sent players to; empty means "every
	// other active region".
	To string `json:"to,omitempty"`
	// Redirect lists the cells a refused join may go to instead (the
	// cells of To, or of every other active region), as the global layer
	// saw them when the failover was made.
	Redirect []CellRef `json:"redirect,omitempty"`
	At       time.Time `json:"at"`
}

// CellRef names a cell and its public API.
type CellRef struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	API    string `json:"api"`
}

// RegionOpsSubject is the request subject of region operations, answered
// by the global layer: a RegionOp in, a RegionOpReply out. Like every ops
// subject it is meant to be permitted to operators only.
const RegionOpsSubject = "cellgrid.ops.region"

// Region operations.
const (
	RegionOpFailover = "failover"
	RegionOpRestore  = "restore"
	RegionOpStatus   = "status"
)

// RegionOp asks for a failover of Region (to To, optional), its restore,
// or the status of every region.
type RegionOp struct {
	Op     string `json:"op"`
	Region string `json:"region,omitempty"`
	To     string `json:"to,omitempty"`
}

// RegionOpReply answers a RegionOp: Error is set when it was refused;
// Regions is the state of every known region after the operation.
type RegionOpReply struct {
	Error   string        `json:"error,omitempty"`
	Regions []RegionState `json:"regions,omitempty"`
}

// RegionState is one region as operators and /topology see it.
type RegionState struct {
	Region string   `json:"region"`
	State  string   `json:"state"` // RegionActive or RegionFailedOver
	To     string   `json:"to,omitempty"`
	Cells  []string `json:"cells,omitempty"`
}
