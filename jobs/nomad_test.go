package jobs

// These tests run the jobs on a real `nomad agent -dev` (v1.6.3, built by
// build/hashistack.sh) with the real cellgrid binary: Nomad schedules the
// dispatches, raw_exec starts `cellgrid dgs`, NOMAD_META_* and the dynamic
// port are interpolated, and the DGSs announce themselves to a fleet over
// a real NATS supercluster.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// nomadFleet is a fleet of one cell whose DGSs are Nomad dispatches.
type nomadFleet struct {
	f      *fleet.Fleet
	l      *NomadLauncher
	nomad  *testenv.Nomad
	jobID  string
	mu     sync.Mutex
	states []string // "id from→to"
	stop   func()
}

func (nf *nomadFleet) record(id string, from, to events.DGSState) {
	nf.mu.Lock()
	defer nf.mu.Unlock()
	nf.states = append(nf.states, id+" "+string(from)+"→"+string(to))
}

func (nf *nomadFleet) saw(id string, to events.DGSState) bool {
	nf.mu.Lock()
	defer nf.mu.Unlock()
	for _, s := range nf.states {
		if strings.HasPrefix(s, id+" ") && strings.HasSuffix(s, "→"+string(to)) {
			return true
		}
	}
	return false
}

func (nf *nomadFleet) servers(state events.DGSState) []fleet.Server {
	var out []fleet.Server
	for _, s := range nf.f.Servers() {
		if state == "" || s.State == state {
			out = append(out, s)
		}
	}
	return out
}

// startNomadFleet registers a DGS job for a fresh cell on n and runs a
// fleet with a NomadLauncher on it.
func startNomadFleet(t *testing.T, n *testenv.Nomad, cfg fleet.Config, dgsArgs ...string) *nomadFleet {
	t.Helper()
	bin := testenv.CellgridBinary(t)
	cellID := "c" + uuid.NewString()[:8]
	sc := testenv.NewSuperCluster(t, cellID, "global")
	srv := sc.Server(cellID)
	nc := testenv.Connect(t, srv)

	spec := DGSSpec{Common: Common{Region: n.Region, Binary: Binary{Source: bin}}, JobID: DGSJobID(cellID),
		NATSURL: srv.ClientURL(), ExtraArgs: append([]string{"--health-interval=200ms"}, dgsArgs...)}
	job, err := DGSJob(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Client.Jobs().Register(job, nil); err != nil {
		t.Fatalf("register dgs job: %v", err)
	}
	nf := &nomadFleet{nomad: n, jobID: spec.JobID}
	nf.l = &NomadLauncher{Client: n.Client, JobID: spec.JobID}
	t.Cleanup(func() { purgeJobs(t, n, spec.JobID) })

	cfg.Cell, cfg.NATSURL, cfg.Version, cfg.OnStateChange = cellID, srv.ClientURL(), fleet.Version{Name: "v1"}, nf.record
	cfg.HealthTimeout = 2 * time.Second
	cfg.AutoscaleInterval = 100 * time.Millisecond
	cfg.StopTimeout = 30 * time.Second
	f, err := fleet.New(cfg, fleet.Deps{NATS: nc, Launcher: nf.l})
	if err != nil {
		t.Fatal(err)
	}
	nf.f = f
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	nf.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("fleet run: %v", err)
			}
			nf.l.Close()
		})
	}
	t.Cleanup(nf.stop)
	return nf
}

// purgeJobs deregisters (with purge) the job and every dispatch of it.
func purgeJobs(t *testing.T, n *testenv.Nomad, prefix string) {
	list, _, err := n.Client.Jobs().PrefixList(prefix)
	if err != nil {
		t.Logf("list jobs %s: %v", prefix, err)
		return
	}
	for _, j := range list {
		_, _, _ = n.Client.Jobs().Deregister(j.ID, true, nil)
	}
}

// allocOf returns the allocation of a dispatched DGS job.
func allocOf(n *testenv.Nomad, jobID string) (*api.AllocationListStub, error) {
	allocs, _, err := n.Client.Jobs().Allocations(jobID, true, nil)
	if err != nil {
		return nil, err
	}
	if len(allocs) != 1 {
		return nil, fmt.Errorf("job %s has %d allocations", jobID, len(allocs))
	}
	return allocs[0], nil
}

// pidOfDGS finds the process running `cellgrid dgs … --id id` (started by
// Nomad's raw_exec executor, not by us).
func pidOfDGS(id string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	needle := []byte("\x00--id\x00" + id + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte("\x00dgs\x00")) && bytes.Contains(b, needle) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process for dgs %s", id)
}

// TestNomadFleetOnRealAgent: the warm pool is filled by real dispatches
// that start `cellgrid dgs`, announce Ready over NATS and take an
// allocation; a DGS killed with SIGKILL is seen Unhealthy and replaced;
// surplus Ready servers are scaled in by stopping their allocations.
func TestNomadFleetOnRealAgent(t *testing.T) {
	hs := testenv.SharedHashiStack(t)
	nf := startNomadFleet(t, hs.Nomad, fleet.Config{Buffer: 2, Max: 4}, "--wait-for-players=2s")

	waitReadyN := func(n int) []fleet.Server {
		var ready []fleet.Server
		testenv.Eventually(t, 90*time.Second, func() error {
			ready = nf.servers(events.DGSReady)
			if len(ready) != n {
				return fmt.Errorf("%d ready, want %d: %+v", len(ready), n, nf.f.Servers())
			}
			return nil
		})
		return ready
	}
	ready := waitReadyN(2)
	for _, s := range ready {
		jobID := DispatchedJobID(s.Handle)
		if !strings.HasPrefix(jobID, nf.jobID+"/dispatch-") {
			t.Fatalf("server %s is not a dispatch of %s: %q", s.ID, nf.jobID, jobID)
		}
		// The client reports the task running in batches: it may lag the
		// DGS's own Ready heartbeat.
		testenv.Eventually(t, 30*time.Second, func() error {
			a, err := allocOf(hs.Nomad, jobID)
			if err != nil {
				return err
			}
			if a.ClientStatus != api.AllocClientStatusRunning {
				return fmt.Errorf("dispatch %s is %s", jobID, a.ClientStatus)
			}
			return nil
		})
		if !strings.HasPrefix(s.GameAddr, "127.0.0.1:") {
			t.Fatalf("game address %q is not the dynamic port Nomad gave on loopback", s.GameAddr)
		}
	}

	// SIGKILL one from outside: Nomad marks its allocation failed (no
	// restart), the fleet sees it Unhealthy and dispatches a replacement.
	victim := ready[0]
	pid, err := pidOfDGS(victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, func() error {
		if !nf.saw(victim.ID, events.DGSUnhealthy) {
			return errors.New("victim never Unhealthy")
		}
		for _, s := range nf.f.Servers() {
			if s.ID == victim.ID {
				return errors.New("victim still listed")
			}
		}
		if n := len(nf.servers(events.DGSReady)); n != 2 {
			return fmt.Errorf("%d ready", n)
		}
		return nil
	})
	a, err := allocOf(hs.Nomad, DispatchedJobID(victim.Handle))
	if err == nil && a.ClientStatus == api.AllocClientStatusRunning {
		t.Fatalf("killed dgs's allocation still running: %+v", a)
	}

	// Allocate one (nobody joins: it gives up after --wait-for-players and
	// returns to Ready). The buffer refills to 2 meanwhile, so 3 are Ready
	// afterwards: the surplus one is scaled in, its allocation stopped.
	al, err := nf.f.Allocate(context.Background(), events.Allocation{SessionID: uuid.NewString(), GameMode: "duel", Players: []string{uuid.NewString(), uuid.NewString()}, ConnectKeys: testConnectKeys()})
	if err != nil {
		t.Fatal(err)
	}
	if !al.GameAddr.IsValid() {
		t.Fatalf("allocated game addr %v", al.GameAddr)
	}
	var retired fleet.Server
	testenv.Eventually(t, 90*time.Second, func() error {
		nf.mu.Lock()
		defer nf.mu.Unlock()
		for _, st := range nf.states {
			if strings.HasSuffix(st, string(events.DGSReady)+"→"+string(events.DGSShutdown)) {
				retired.ID = strings.Fields(st)[0]
				return nil
			}
		}
		return errors.New("no Ready server scaled in yet")
	})
	_ = retired
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, s := range nf.f.Servers() {
			if s.ID == retired.ID {
				return errors.New("retired server still listed")
			}
		}
		if _, err := pidOfDGS(retired.ID); err == nil {
			return fmt.Errorf("retired dgs %s still running", retired.ID)
		}
		if n := len(nf.servers(events.DGSReady)); n != 2 {
			return fmt.Errorf("%d ready after scale-in, want 2", n)
		}
		return nil
	})

	// Stopping the fleet stops every dispatch.
	nf.stop()
	list, _, err := hs.Nomad.Client.Jobs().PrefixList(nf.jobID + "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list {
		if j.Status != "dead" {
			t.Errorf("dispatch %s left %s after the fleet stopped", j.ID, j.Status)
		}
	}
}

// TestNodeDrainLetsAllocatedMatchFinish pins down what a Nomad node drain
// does to DGSs, which are batch allocations: Nomad does not migrate or stop
// batch allocations before the drain deadline; it waits for them to end
// on their own, then the drain completes. (At the deadline it would
// force-stop whatever still runs: choose a deadline longer than a match.)
// The drained node takes no new dispatch meanwhile.
func TestNodeDrainLetsAllocatedMatchFinish(t *testing.T) {
	n := testenv.NewNomad(t, testenv.NomadConfig{}) // its own agent: draining it must not disturb other tests
	nf := startNomadFleet(t, n, fleet.Config{Buffer: 1, Max: 1}, "--wait-for-players=4s", "--exit-after-match")
	var srv fleet.Server
	testenv.Eventually(t, 90*time.Second, func() error {
		r := nf.servers(events.DGSReady)
		if len(r) != 1 {
			return fmt.Errorf("%d ready", len(r))
		}
		srv = r[0]
		return nil
	})
	if _, err := nf.f.Allocate(context.Background(), events.Allocation{SessionID: uuid.NewString(), GameMode: "duel", Players: []string{uuid.NewString(), uuid.NewString()}, ConnectKeys: testConnectKeys()}); err != nil {
		t.Fatal(err)
	}
	jobID := DispatchedJobID(srv.Handle)
	_, err := n.Client.Nodes().UpdateDrainOpts(n.NodeID, &api.DrainOptions{
		DrainSpec:    &api.DrainSpec{Deadline: 10 * time.Minute},
		MarkEligible: false,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The match ends on its own (nobody joins within 4 s, then the server
	// reports Shutdown and exits after its one match); until then the
	// drain must not stop or kill it. (Afterwards the fleet deregisters
	// the finished dispatch itself.)
	allocID := mustAllocID(t, n, jobID)
	testenv.Eventually(t, 120*time.Second, func() error {
		ended := nf.saw(srv.ID, events.DGSShutdown)
		alloc, _, err := n.Client.Allocations().Info(allocID, nil)
		if err != nil {
			return err
		}
		if !ended && alloc.DesiredStatus != api.AllocDesiredStatusRun {
			t.Fatalf("the drain set the allocated DGS's desired status to %s (%q) before its match ended", alloc.DesiredStatus, alloc.DesiredDescription)
		}
		for _, ts := range alloc.TaskStates {
			for _, ev := range ts.Events {
				if !ended && (ev.Type == api.TaskKilling || ev.Type == api.TaskKilled) {
					t.Fatalf("the DGS was killed (%s: %s) during its match", ev.Type, ev.DisplayMessage)
				}
			}
		}
		if !ended {
			return errors.New("match still running")
		}
		if nf.saw(srv.ID, events.DGSUnhealthy) {
			t.Fatalf("the allocated DGS turned Unhealthy: %v", nf.states)
		}
		return nil
	})
	// The drained node is ineligible for new placements. (Observed with
	// Nomad 1.6.3: the drain itself stays in progress after its last batch
	// allocation ended when that dispatch was purged, until the deadline
	// or an undrain; `cellgrid cell remove` therefore drains the cell,
	// never relies on a node drain completing.)
	node, _, err := n.Client.Nodes().Info(n.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if node.SchedulingEligibility != api.NodeSchedulingIneligible {
		t.Fatalf("draining node eligibility %s", node.SchedulingEligibility)
	}
	// The fleet's replacement dispatch cannot be placed on the drained node.
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, s := range nf.f.Servers() {
			if s.ID == srv.ID || s.Handle == nil {
				continue
			}
			a, err := allocOf(n, DispatchedJobID(s.Handle))
			if err == nil {
				return fmt.Errorf("replacement %s placed on a drained node: %s", s.ID, a.ClientStatus)
			}
			if s.State == events.DGSScheduled {
				return nil
			}
		}
		return fmt.Errorf("no pending replacement yet: %+v", nf.f.Servers())
	})
	nf.stop()
}

// testConnectKeys is a cell's connect-token key as an allocation carries it.
func testConnectKeys() []string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return []string{base64.StdEncoding.EncodeToString(pub)}
}

func mustAllocID(t *testing.T, n *testenv.Nomad, jobID string) string {
	t.Helper()
	a, err := allocOf(n, jobID)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// TestJobsPerRegionOnJoinedRegions: Job.Multiregion is Enterprise-only, so
// a DGS job is registered once per region; through one region's agent
// (requests forwarded over the joined servers) each lands in its own.
func TestJobsPerRegionOnJoinedRegions(t *testing.T) {
	agents := testenv.JoinNomadRegions(t, "eu", "us")
	eu := agents[0]
	for _, region := range []string{"eu", "us"} {
		j, err := DGSJob(DGSSpec{Common: Common{Region: region, Datacenters: []string{region + "-1"}, Binary: Binary{Source: "/bin/true"}},
			JobID: DGSJobID("cell-" + region), NATSURL: "nats://127.0.0.1:4222"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := eu.Client.Jobs().Register(j, &api.WriteOptions{Region: region}); err != nil {
			t.Fatalf("register in %s through eu: %v", region, err)
		}
	}
	for _, a := range agents {
		list, _, err := a.Client.Jobs().List(&api.QueryOptions{Region: a.Region})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != DGSJobID("cell-"+a.Region) {
			t.Fatalf("region %s holds %+v", a.Region, list)
		}
	}
}
