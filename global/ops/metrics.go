package ops

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/topology"
)

// cellStates is a collector over the topology: one series per cell and
// state, 1 for the cell's current state. The "cell silent" alert watches
// state="failed" (the topology marks a cell failed when its heartbeats
// stop).
type cellStates struct {
	topo *topology.Registry
	desc *prometheus.Desc
}

func (c cellStates) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c cellStates) Collect(ch chan<- prometheus.Metric) {
	for _, cell := range c.topo.Cells() {
		for _, st := range []string{topology.StateHealthy, topology.StateDraining, topology.StateFailed} {
			v := 0.0
			if cell.State == st {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, cell.ID, cell.Region, st)
		}
	}
}

// registerMetrics registers the topology gauge and the actions counter.
func (o *Ops) registerMetrics(reg prometheus.Registerer) {
	httpapi.RegisterCollector(reg, cellStates{topo: o.deps.Topology, desc: prometheus.NewDesc(
		"cellgrid_topology_cell_state", "1 for each cell's current state in the global topology (healthy, draining, failed).",
		[]string{"cell", "region", "state"}, nil)})
	o.actions = httpapi.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellgrid_ops_actions_total", Help: "Operator actions by action and outcome (ok, failed), as audited.",
	}, []string{"action", "outcome"}))
}
