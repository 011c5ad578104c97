// Package jobs describes cellgrid's Nomad jobs as nomad/api structs (never
// HCL text) and implements fleet.Launcher on top of a parameterized batch
// job.
//
//   - CellJob: one service job per cell, running `cellgrid cell` with an
//     HTTP port (Consul service, HTTP check on /readyz) and the UDP relay port.
//   - GlobalJob: the global layer service (`cellgrid global`).
//   - DGSJob: a parameterized batch job, one per cell (DGSJobID); every
//     dispatch is one game server, identified by the required meta keys
//     cell, dgs_id and version.
//   - NomadLauncher: fleet.Launcher that dispatches DGSJob and watches the
//     dispatched job's allocations with blocking queries.
//
// Job.Multiregion is a Nomad Enterprise feature: register one job per
// region (the spec's Region) instead.
package jobs
