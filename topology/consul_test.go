package topology

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/cellgrid/cellgrid/internal/localserver"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// fakeCellAPI is an HTTP server answering /readyz (200 while ready).
func fakeCellAPI(t *testing.T) (*httptest.Server, *atomic.Bool) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && ready.Load() {
			w.WriteHeader(200)
			return
		}
		w.WriteHeader(503)
	}))
	t.Cleanup(srv.Close)
	return srv, &ready
}

func startRegistrar(t *testing.T, client *consul.Client, services []Service) (stop func() error) {
	t.Helper()
	reg, err := NewRegistrar(RegistrarConfig{Services: services, CheckInterval: 200 * time.Millisecond}, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx) }()
	var once bool
	stop = func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func serviceStatus(c *consul.Client, service, dc string) (map[string]string, error) {
	entries, _, err := c.Health().Service(service, "", false, &consul.QueryOptions{Datacenter: dc})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Service.ID] = e.Checks.AggregatedStatus()
	}
	return out, nil
}

// TestRegistrarChecksAndDeregisters: a cell's API and relay are Consul
// services with the relay's UDP address and region in meta, checked on
// /readyz (a failing /readyz turns them critical), and a clean shutdown
// deregisters both.
func TestRegistrarChecksAndDeregisters(t *testing.T) {
	c := testenv.NewConsul(t, testenv.ConsulConfig{})
	api, ready := fakeCellAPI(t)
	svcs, err := CellServices("eu-west-1", "eu", api.URL, "127.0.0.1:7777")
	if err != nil {
		t.Fatal(err)
	}
	stop := startRegistrar(t, c.Client, svcs)

	testenv.Eventually(t, 20*time.Second, func() error {
		for _, name := range []string{ServiceCell, ServiceRelay} {
			st, err := serviceStatus(c.Client, name, "")
			if err != nil {
				return err
			}
			if st[name+"-eu-west-1"] != consul.HealthPassing {
				return fmt.Errorf("%s: %v", name, st)
			}
		}
		return nil
	})
	relay, _, err := c.Client.Catalog().Service(ServiceRelay, "", nil)
	if err != nil || len(relay) != 1 {
		t.Fatalf("relay service %v %v", relay, err)
	}
	if m := relay[0].ServiceMeta; m[MetaRelay] != "127.0.0.1:7777" || m[MetaRegion] != "eu" || relay[0].ServicePort != 7777 {
		t.Fatalf("relay meta %v port %d", m, relay[0].ServicePort)
	}

	ready.Store(false)
	testenv.Eventually(t, 20*time.Second, func() error {
		st, err := serviceStatus(c.Client, ServiceCell, "")
		if err != nil {
			return err
		}
		if st[ServiceCell+"-eu-west-1"] != consul.HealthCritical {
			return fmt.Errorf("want critical after /readyz fails: %v", st)
		}
		return nil
	})

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ServiceCell, ServiceRelay} {
		if st, err := serviceStatus(c.Client, name, ""); err != nil || len(st) != 0 {
			t.Fatalf("%s after clean shutdown: %v %v", name, st, err)
		}
	}
}

// TestWatchConsulFollowsCatalog: with Consul, the topology lists the cells
// of the catalog; a killed cell (its API gone) turns critical and shows as
// failed; heartbeats still say draining; a deregistered cell is gone.
func TestWatchConsulFollowsCatalog(t *testing.T) {
	testenv.CheckGoroutines(t)
	c := testenv.NewConsul(t, testenv.ConsulConfig{})
	r := NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.WatchConsul(ctx, c.Client, DiscoveryConfig{WaitTime: 5 * time.Second}, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if cells := r.Cells(); len(cells) != 0 {
		t.Fatalf("cells before any registration: %+v", cells)
	}

	changed := r.Changed() // cells the catalog lists wake Changed waiters too
	apiA, _ := fakeCellAPI(t)
	apiB, _ := fakeCellAPI(t)
	svcA, _ := CellServices("a", "eu", apiA.URL, "127.0.0.1:7001")
	svcB, _ := CellServices("b", "us", apiB.URL, "127.0.0.1:7002")
	startRegistrar(t, c.Client, svcA)
	stopB := startRegistrar(t, c.Client, svcB)

	want := func(states map[string]string) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			cells := r.Cells()
			got := map[string]string{}
			for _, cl := range cells {
				got[cl.ID] = cl.State
			}
			if fmt.Sprint(got) != fmt.Sprint(states) {
				return fmt.Errorf("cells %+v, want %v", cells, states)
			}
			return nil
		})
	}
	want(map[string]string{"a": StateHealthy, "b": StateHealthy})
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire for cells that appeared in the catalog")
	}
	if cells := r.Cells(); cells[0].Relay != "127.0.0.1:7001" || cells[0].API != apiA.URL || cells[0].Region != "eu" {
		t.Fatalf("cell a from the catalog: %+v", cells[0])
	}

	apiA.Close() // the process died: no answer on /readyz
	want(map[string]string{"a": StateFailed, "b": StateHealthy})

	r.heard(Cell{ID: "b", State: StateDraining}, time.Now()) // its heartbeat says draining
	want(map[string]string{"a": StateFailed, "b": StateDraining})

	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	want(map[string]string{"a": StateFailed})
}

// TestPreparedQueryFailsOverToNearestDatacenter: two datacenters joined
// over the WAN; the only healthy cell is in dc2. The prepared query run in
// dc1 answers with dc2's cell, and a topology watching every datacenter
// from dc1's agent lists it.
func TestPreparedQueryFailsOverToNearestDatacenter(t *testing.T) {
	dcs := testenv.JoinConsulWAN(t, "dc1", "dc2")
	dc1, dc2 := dcs[0], dcs[1]
	api, _ := fakeCellAPI(t)
	svcs, _ := CellServices("us-east-1", "us", api.URL, "127.0.0.1:7003")
	startRegistrar(t, dc2.Client, svcs)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id, err := EnsurePreparedQuery(ctx, dc1.Client, PreparedQuery("cellgrid-cells", ServiceCell, 3))
	if err != nil {
		t.Fatal(err)
	}
	if id2, err := EnsurePreparedQuery(ctx, dc1.Client, PreparedQuery("cellgrid-cells", ServiceCell, 2)); err != nil || id2 != id {
		t.Fatalf("second ensure: %s %v (want update of %s)", id2, err, id)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		cells, from, err := NearestCells(ctx, dc1.Client, "cellgrid-cells", "dc1")
		if err != nil {
			return err
		}
		if from != "dc2" || len(cells) != 1 || cells[0].ID != "us-east-1" || cells[0].Relay != "127.0.0.1:7003" {
			return fmt.Errorf("query from dc1 answered %+v from %q", cells, from)
		}
		return nil
	})

	r := NewRegistry()
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.WatchConsul(wctx, dc1.Client, DiscoveryConfig{WaitTime: 5 * time.Second}, nil) }()
	defer func() { wcancel(); <-done }()
	testenv.Eventually(t, 30*time.Second, func() error {
		cells := r.Cells()
		if len(cells) != 1 || cells[0].ID != "us-east-1" || cells[0].State != StateHealthy {
			return fmt.Errorf("cells %+v", cells)
		}
		return nil
	})
}

// TestRegistrarSurvivesConsulAway: a Consul agent that does not answer
// never stops the process the registrar runs in: Run keeps retrying and
// returns nil on shutdown.
func TestRegistrarSurvivesConsulAway(t *testing.T) {
	ports, err := localserver.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := consul.DefaultConfig()
	cfg.Address = fmt.Sprintf("127.0.0.1:%d", ports[0]) // nothing listens
	client, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := CellServices("x", "eu", "http://127.0.0.1:9/", "127.0.0.1:9")
	reg, err := NewRegistrar(RegistrarConfig{Services: svcs, CheckInterval: 50 * time.Millisecond}, client, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned while Consul is away: %v", err)
	case <-time.After(300 * time.Millisecond): // several failed attempts
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
