package topology

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

// globalLayer is the part of the global layer under test: a registry fed
// by heartbeats plus the failover keeper, both on the global cluster.
type globalLayer struct {
	reg  *Registry
	stop func()
}

func startGlobal(t *testing.T, nc *nats.Conn) *globalLayer {
	t.Helper()
	reg := NewRegistry()
	fo, err := NewFailover(FailoverConfig{Cluster: "global"}, FailoverDeps{NATS: nc, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- reg.Watch(ctx, nc, 2*time.Second, nil) }()
	go func() { done <- fo.Run(ctx) }()
	g := &globalLayer{reg: reg}
	g.stop = func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() {
		if g.stop != nil {
			g.stop()
		}
	})
	return g
}

func (g *globalLayer) shutdown() { g.stop(); g.stop = nil }

func beat(t *testing.T, nc *nats.Conn, id string) {
	b, _ := json.Marshal(events.CellHeartbeat{ID: id, Region: id, API: "http://" + id, Relay: "127.0.0.1:1", State: events.CellHealthy, At: time.Now()})
	if err := nc.Publish(events.CellHeartbeatSubject, b); err != nil {
		t.Fatal(err)
	}
}

func regionOp(nc *nats.Conn, op events.RegionOp) (events.RegionOpReply, error) {
	b, _ := json.Marshal(op)
	m, err := nc.Request(events.RegionOpsSubject, b, 10*time.Second)
	if err != nil {
		return events.RegionOpReply{}, err
	}
	var r events.RegionOpReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, err
	}
	if r.Error != "" {
		return r, fmt.Errorf("%s", r.Error)
	}
	return r, nil
}

func topologyDoc(t *testing.T, reg *Registry) Document {
	mux := http.NewServeMux()
	reg.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/topology", nil))
	var doc Document
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func cellState(doc Document, id string) string {
	for _, c := range doc.Cells {
		if c.ID == id {
			return c.State
		}
	}
	return ""
}

// TestRegionFailoverStickyAndDurable: an operator's failover, sent from a
// cell's cluster, shows in /topology, is not undone by the failed region's
// heartbeats, survives a restart of the global layer, and restore ends it.
func TestRegionFailoverStickyAndDurable(t *testing.T) {
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global", "eu-west-1", "us-east-1")
	gnc := testenv.Connect(t, sc.Server("global"))
	eu := testenv.Connect(t, sc.Server("eu-west-1"))
	us := testenv.Connect(t, sc.Server("us-east-1"))
	ops := testenv.Connect(t, sc.Server("us-east-1")) // an SRE anywhere in the supercluster

	g := startGlobal(t, gnc)
	beatBoth := func() { beat(t, eu, "eu-west-1"); beat(t, us, "us-east-1") }
	testenv.Eventually(t, 20*time.Second, func() error {
		beatBoth()
		if d := topologyDoc(t, g.reg); cellState(d, "eu-west-1") != StateHealthy || cellState(d, "us-east-1") != StateHealthy {
			return fmt.Errorf("cells %+v", d.Cells)
		}
		_, err := regionOp(ops, events.RegionOp{Op: events.RegionOpStatus})
		return err
	})

	r, err := regionOp(ops, events.RegionOp{Op: events.RegionOpFailover, Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Regions) != 2 || r.Regions[0].Region != "eu-west-1" || r.Regions[0].State != events.RegionFailedOver || r.Regions[1].State != events.RegionActive {
		t.Fatalf("reply regions %+v", r.Regions)
	}
	// The failed region keeps beating healthy: the failover stays.
	for range 5 {
		beatBoth()
		time.Sleep(50 * time.Millisecond)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		beatBoth()
		d := topologyDoc(t, g.reg)
		if cellState(d, "eu-west-1") != StateFailedOver || cellState(d, "us-east-1") != StateHealthy {
			return fmt.Errorf("cells %+v", d.Cells)
		}
		if len(d.Regions) != 2 || d.Regions[0].State != events.RegionFailedOver {
			return fmt.Errorf("regions %+v", d.Regions)
		}
		return nil
	})
	best, ok := Best(g.reg.Cells(), map[string]float64{"eu-west-1": 1, "us-east-1": 80})
	if !ok || best.ID != "us-east-1" {
		t.Fatalf("best = %v %v, want us-east-1: eu-west-1 is failed over", best.ID, ok)
	}
	rf, _ := g.reg.FailedOver("eu-west-1")
	if len(rf.Redirect) != 1 || rf.Redirect[0].ID != "us-east-1" || rf.Redirect[0].API != "http://us-east-1" {
		t.Fatalf("redirect = %+v", rf.Redirect)
	}

	// Restart the global layer: the record is read back before any beat.
	g.shutdown()
	g = startGlobal(t, gnc)
	testenv.Eventually(t, 20*time.Second, func() error {
		if _, ok := g.reg.FailedOver("eu-west-1"); !ok {
			return fmt.Errorf("failover lost across restart: regions %+v", g.reg.Regions())
		}
		beatBoth()
		if s := cellState(topologyDoc(t, g.reg), "eu-west-1"); s != StateFailedOver {
			return fmt.Errorf("eu-west-1 %q after restart", s)
		}
		return nil
	})

	if _, err := regionOp(ops, events.RegionOp{Op: events.RegionOpRestore, Region: "eu-west-1"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		beatBoth()
		if s := cellState(topologyDoc(t, g.reg), "eu-west-1"); s != StateHealthy {
			return fmt.Errorf("eu-west-1 %q after restore", s)
		}
		return nil
	})
	g.shutdown()
	g = startGlobal(t, gnc)
	testenv.Eventually(t, 20*time.Second, func() error {
		beatBoth()
		if _, err := regionOp(ops, events.RegionOp{Op: events.RegionOpStatus}); err != nil {
			return err
		}
		if s := cellState(topologyDoc(t, g.reg), "eu-west-1"); s != StateHealthy {
			return fmt.Errorf("eu-west-1 %q after restore and restart", s)
		}
		return nil
	})
}

// TestRegionOpsRefused: bad operations get a clear error and change
// nothing.
func TestRegionOpsRefused(t *testing.T) {
	testenv.CheckGoroutines(t)
	sc := testenv.NewSuperCluster(t, "global")
	nc := testenv.Connect(t, sc.Server("global"))
	g := startGlobal(t, nc)
	g.reg.Put(Cell{ID: "eu-west-1", Region: "eu-west-1", API: "http://eu"})
	g.reg.Put(Cell{ID: "us-east-1", Region: "us-east-1", API: "http://us"})
	testenv.Eventually(t, 20*time.Second, func() error {
		_, err := regionOp(nc, events.RegionOp{Op: events.RegionOpStatus})
		return err
	})
	for _, c := range []struct {
		op   events.RegionOp
		want string
	}{
		{events.RegionOp{Op: "explode"}, "unknown op"},
		{events.RegionOp{Op: events.RegionOpFailover, Region: "mars-1"}, "unknown region"},
		{events.RegionOp{Op: events.RegionOpFailover, Region: "eu-west-1", To: "eu-west-1"}, "itself"},
		{events.RegionOp{Op: events.RegionOpFailover, Region: "eu-west-1", To: "x.>"}, "unknown target"},
		{events.RegionOp{Op: events.RegionOpRestore, Region: "eu-west-1"}, "not failed over"},
	} {
		if _, err := regionOp(nc, c.op); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.op, err, c.want)
		}
	}
	if _, err := regionOp(nc, events.RegionOp{Op: events.RegionOpFailover, Region: "eu-west-1", To: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := regionOp(nc, events.RegionOp{Op: events.RegionOpFailover, Region: "us-east-1", To: "eu-west-1"}); err == nil || !strings.Contains(err.Error(), "failed over itself") {
		t.Fatalf("failover to a failed-over region: %v", err)
	}
	if _, err := regionOp(nc, events.RegionOp{Op: events.RegionOpFailover, Region: "us-east-1"}); err == nil || !strings.Contains(err.Error(), "no healthy cell") {
		t.Fatalf("failing over the last region: %v", err)
	}
	for _, rs := range g.reg.Regions() {
		if want := map[string]string{"eu-west-1": events.RegionFailedOver, "us-east-1": events.RegionActive}[rs.Region]; rs.State != want {
			t.Fatalf("region %s %s, want %s", rs.Region, rs.State, want)
		}
	}
}

// TestSetStateSticky: an operator's SetState is not overwritten by the
// cell's next heartbeat; SetState(healthy) hands control back.
func TestSetStateSticky(t *testing.T) {
	r := NewRegistry(Cell{ID: "eu", Region: "eu"})
	if err := r.SetState("eu", StateFailed); err != nil {
		t.Fatal(err)
	}
	r.heard(Cell{ID: "eu", Region: "eu", State: StateHealthy}, time.Now())
	if s := r.Cells()[0].State; s != StateFailed {
		t.Fatalf("state after a heartbeat %q, want failed", s)
	}
	if err := r.SetState("eu", StateHealthy); err != nil {
		t.Fatal(err)
	}
	r.heard(Cell{ID: "eu", Region: "eu", State: StateDraining}, time.Now())
	if s := r.Cells()[0].State; s != StateDraining {
		t.Fatalf("state %q, want the reported draining", s)
	}
}
