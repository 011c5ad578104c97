package e2e

// Cells on real Nomad and Consul dev agents (v1.6.3 / v1.16.3, built by
// build/hashistack.sh): `cellgrid cell add` registers a cell's jobs, the
// cell (the real cellgrid binary under raw_exec) registers itself in
// Consul, the global layer takes it from the Consul catalog, bots play on
// a DGS Nomad dispatched, and `cellgrid cell remove` takes the cell away
// without cutting the match in flight.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/global"
	"github.com/cellgrid/cellgrid/internal/natsembed"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/jobs"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/topology"
)

// nomadRig is a global layer (in this process, topology from Consul) and
// everything a cell added through Nomad needs: database, Redis, its NATS
// cluster, the shared Nomad and Consul agents and the cellgrid binary.
type nomadRig struct {
	hs        *testenv.HashiStack
	bin       string
	cell      string
	dbURL     string
	redis     string
	sc        *natsembed.SuperCluster
	globalURL string
	topo      *topology.Registry
}

func startNomadRig(t *testing.T, cell string) *nomadRig {
	t.Helper()
	hs := testenv.SharedHashiStack(t)
	r := &nomadRig{hs: hs, bin: testenv.CellgridBinary(t), cell: cell}
	d := testenv.NewDatabase(t)
	r.dbURL = d.URL
	r.redis = testenv.NewRedis(t).Addr
	gRedis := testenv.NewRedis(t)
	r.sc = testenv.NewSuperCluster(t, "global", cell)
	gNATS := testenv.Connect(t, r.sc.Server("global"))

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	gcfg := devstack.DevGlobal()
	gcfg.Addr, gcfg.Cells = "127.0.0.1:0", []string{cell}
	gcfg.Auth.AllowDeviceLogin, gcfg.Auth.EncryptionKey = true, key
	r.topo = topology.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	g, err := global.New(gcfg, global.Deps{DB: d.Pool, Redis: gRedis.Client, NATS: gNATS, Topology: r.topo, Log: quietLog()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r.globalURL = g.URL()
	done := make(chan error, 2)
	go func() { done <- g.Run(ctx) }()
	go func() {
		done <- r.topo.WatchConsul(ctx, hs.Consul.Client, topology.DiscoveryConfig{WaitTime: 5 * time.Second}, quietLog())
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("global: %v", err)
			}
		}
	})
	// Whatever happens, leave no job (and so no process) behind.
	t.Cleanup(func() {
		for _, prefix := range []string{jobs.CellJobID(cell), jobs.DGSJobID(cell)} {
			list, _, _ := hs.Nomad.Client.Jobs().PrefixList(prefix)
			for _, j := range list {
				_, _, _ = hs.Nomad.Client.Jobs().Deregister(j.ID, true, nil)
			}
		}
		testenv.Eventually(t, 60*time.Second, func() error {
			if pids := processesOf(cell); len(pids) > 0 {
				return fmt.Errorf("processes of cell %s still running: %v", cell, pids)
			}
			return nil
		})
	})
	return r
}

// cellgrid runs the cellgrid binary and returns its stdout; a failure
// fails the test with both outputs.
func (r *nomadRig) cellgrid(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cellgrid %s: %v\nstdout:\n%s\nstderr:\n%s\nnomad log:\n%s", strings.Join(args, " "), err, out.String(), errb.String(), r.hs.Nomad.Log())
	}
	return out.String()
}

// addCell runs `cellgrid cell add` the way an operator would.
func (r *nomadRig) addCell(t *testing.T) string {
	t.Helper()
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	return r.cellgrid(t, "cell", "add", "--id", r.cell, "--region", "eu",
		"--nomad", r.hs.Nomad.Addr, "--consul", r.hs.Consul.Addr, "--binary", r.bin,
		"--db", r.dbURL, "--redis", r.redis, "--nats", r.sc.Server(r.cell).ClientURL(), "--global", r.globalURL,
		"--connect-key", hex.EncodeToString(seed), "--fleet-buffer", "1", "--fleet-max", "4",
		"--dgs-arg=--score-limit=1000", "--dgs-arg=--time-limit=8s", "--dgs-arg=--wait-for-players=30s",
		"--dgs-arg=--health-interval=250ms", "--timeout", "90s")
}

// processesOf lists pids whose command line names cell (its cell process
// and its DGSs: `--id <cell>` or `--cell <cell>`).
func processesOf(cell string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte("\x00--id\x00"+cell+"\x00")) || bytes.Contains(b, []byte("\x00--cell\x00"+cell+"\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cellProcess is the pid of `cellgrid cell --id <cell>`.
func cellProcess(cell string) (int, error) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(b, []byte("\x00cell\x00--id\x00"+cell+"\x00")) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no cell process for %s", cell)
}

func (r *nomadRig) topologyState(t *testing.T) (string, error) {
	resp, err := http.Get(r.globalURL + "/topology")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc topology.Document
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", err
	}
	for _, c := range doc.Cells {
		if c.ID == r.cell {
			return c.State, nil
		}
	}
	return "", nil // not listed
}

func (r *nomadRig) consulStatus() (string, error) {
	entries, _, err := r.hs.Consul.Client.Health().Service(topology.ServiceCell, "cell-"+r.cell, false, nil)
	if err != nil {
		return "", err
	}
	if len(entries) == 0 {
		return "", nil
	}
	return entries[0].Checks.AggregatedStatus(), nil
}

// TestCellAddPlayRemoveOnNomad is the whole path: `cell add` → the
// cell is ready and routable (Consul passing, /topology healthy) → two bots
// play a match on a DGS Nomad dispatched → `cell remove` during a second
// match lets it end normally, then the jobs, the Consul services and the
// processes are gone.
func TestCellAddPlayRemoveOnNomad(t *testing.T) {
	t.Parallel() // its own cell and global layer on the shared agents
	r := startNomadRig(t, "nomad-eu-1")
	out := r.addCell(t)
	t.Logf("cell add printed:\n%s", out)
	if !strings.Contains(out, "registered "+jobs.DGSJobID(r.cell)) || !strings.Contains(out, "cell "+r.cell+" ready") {
		t.Fatalf("cell add printed:\n%s", out)
	}
	if st, err := r.topologyState(t); err != nil || st != topology.StateHealthy {
		t.Fatalf("after cell add /topology says %q (%v)", st, err)
	}
	if st, err := r.consulStatus(); err != nil || st != consul.HealthPassing {
		t.Fatalf("after cell add Consul says %q (%v)", st, err)
	}
	relays, _, err := r.hs.Consul.Client.Catalog().Service(topology.ServiceRelay, "cell-"+r.cell, nil)
	if err != nil || len(relays) != 1 || relays[0].ServiceMeta[topology.MetaRegion] != "eu" || relays[0].ServiceMeta[topology.MetaRelay] == "" {
		t.Fatalf("relay service %+v %v", relays, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	play := func() bots.Summary {
		sum, err := bots.Run(ctx, bots.Config{GlobalURL: r.globalURL, Players: 2, Mode: "duel", Cell: r.cell, MatchTimeout: 90 * time.Second}, nil)
		if err != nil {
			t.Error(err)
		}
		return sum
	}
	nc, err := nats.Connect(r.sc.Server(r.cell).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type alloc struct{ dgs, session string }
	allocated := make(chan alloc, 64)
	sub, err := nc.Subscribe(events.DGSHealthSubject(r.cell), func(m *nats.Msg) {
		var h events.DGSHealth
		if json.Unmarshal(m.Data, &h) == nil && h.State == events.DGSAllocated {
			select {
			case allocated <- alloc{h.ID, h.SessionID}:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nextMatch := func() alloc {
		t.Helper()
		select {
		case a := <-allocated:
			return a
		case <-time.After(90 * time.Second):
			t.Fatal("no match allocated")
		}
		return alloc{}
	}

	first := make(chan bots.Summary, 1)
	go func() { first <- play() }()
	// While the match runs, its DGS is a live Nomad dispatch (afterwards the
	// fleet may scale it in and purge the dispatch).
	a1 := nextMatch()
	testenv.Eventually(t, 30*time.Second, func() error {
		if !dispatchedDGS(t, r, a1.dgs) {
			return fmt.Errorf("the match runs on DGS %s, which no dispatch of %s started", a1.dgs, jobs.DGSJobID(r.cell))
		}
		return nil
	})
	if sum := <-first; sum.Finished != 2 || sum.MatchesCompleted != 1 || len(sum.Errors) != 0 {
		t.Fatalf("first match: %+v", sum)
	}
	// The result, published right after the bots saw the match end, names
	// that DGS.
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, events.MatchStream(r.cell))
	if err != nil {
		t.Fatal(err)
	}
	var res events.MatchResult
	testenv.Eventually(t, 30*time.Second, func() error {
		msg, err := stream.GetLastMsgForSubject(ctx, events.MatchResultSubject(r.cell))
		if err != nil {
			return err
		}
		return json.Unmarshal(msg.Data, &res)
	})
	if res.DGSID != a1.dgs || res.SessionID != a1.session {
		t.Fatalf("result %s on %s, the match allocated was %s on %s", res.SessionID, res.DGSID, a1.session, a1.dgs)
	}
	for len(allocated) > 0 { // repeated Allocated heartbeats of the first match
		<-allocated
	}

	// A second match; remove the cell while it runs.
	second := make(chan bots.Summary, 1)
	go func() { second <- play() }()
	for a := nextMatch(); a.session == a1.session; a = nextMatch() {
	}
	removed := r.cellgrid(t, "cell", "remove", "--id", r.cell, "--nomad", r.hs.Nomad.Addr,
		"--nats", r.sc.Server(r.cell).ClientURL(), "--quiet-period", "2s", "--timeout", "2m")
	sum := <-second
	t.Logf("cell remove printed:\n%s", removed)
	if sum.Finished != 2 || sum.MatchesCompleted != 1 || len(sum.Errors) != 0 {
		t.Fatalf("the match in flight during cell remove did not end normally: %+v\nremove printed:\n%s", sum, removed)
	}
	if !strings.Contains(removed, "cell "+r.cell+": draining") || !strings.Contains(removed, "cell "+r.cell+" removed") {
		t.Fatalf("cell remove printed:\n%s", removed)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if st, err := r.consulStatus(); err != nil || st != "" {
			return fmt.Errorf("consul still has the cell: %q %v", st, err)
		}
		if st, err := r.topologyState(t); err != nil || st != "" {
			return fmt.Errorf("/topology still lists the cell as %q (%v)", st, err)
		}
		if pids := processesOf(r.cell); len(pids) > 0 {
			return fmt.Errorf("processes of the removed cell: %v", pids)
		}
		return nil
	})
}

// dispatchedDGS reports whether a dispatch of the cell's DGS job carried
// dgs_id id.
func dispatchedDGS(t *testing.T, r *nomadRig, id string) bool {
	list, _, err := r.hs.Nomad.Client.Jobs().PrefixList(jobs.DGSJobID(r.cell) + "/dispatch-")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list {
		info, _, err := r.hs.Nomad.Client.Jobs().Info(j.ID, nil)
		if err == nil && info.Meta[jobs.MetaDGSID] == id {
			return true
		}
	}
	return false
}

// TestKilledCellTurnsCriticalThenFailedInTopology: SIGKILL the cell
// process Nomad runs; its Consul check turns critical within the check
// interval and /topology shows it failed; Nomad restarts the task and the
// cell is healthy again.
func TestKilledCellTurnsCriticalThenFailedInTopology(t *testing.T) {
	t.Parallel() // its own cell and global layer on the shared agents
	r := startNomadRig(t, "nomad-us-1")
	r.addCell(t)
	pid, err := cellProcess(r.cell)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		st, err := r.consulStatus()
		if err != nil {
			return err
		}
		if st != consul.HealthCritical {
			return fmt.Errorf("consul says %q", st)
		}
		if ts, err := r.topologyState(t); err != nil || ts != topology.StateFailed {
			return fmt.Errorf("/topology says %q (%v)", ts, err)
		}
		return nil
	})
	testenv.Eventually(t, 90*time.Second, func() error {
		if ts, err := r.topologyState(t); err != nil || ts != topology.StateHealthy {
			return fmt.Errorf("after Nomad's restart /topology says %q (%v)", ts, err)
		}
		if newPID, err := cellProcess(r.cell); err != nil || newPID == pid {
			return errors.New("no new cell process")
		}
		return nil
	})
}

// TestDevStackOnNomad is `cellgrid dev --nomad` in a test: its own Nomad
// and Consul agents run the global layer and a cell as jobs, the cell's
// DGSs are Nomad dispatches, bots play a match, and Close leaves no
// process behind.
func TestDevStackOnNomad(t *testing.T) {
	bin := testenv.CellgridBinary(t)
	d := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const cell = "devnomad-1"
	st, err := devstack.StartNomad(ctx, devstack.NomadConfig{Binary: bin, Config: devstack.Config{
		DataDir: t.TempDir(), Cells: []string{cell}, DatabaseURL: d.URL, Ephemeral: true, FleetBuffer: 1,
		DGSArgs: []string{"--score-limit=1000", "--time-limit=5s", "--wait-for-players=30s"},
	}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	if !strings.HasPrefix(st.NomadURL, "http://127.0.0.1:") || !strings.HasPrefix(st.ConsulURL, "http://127.0.0.1:") {
		t.Fatalf("nomad %q consul %q", st.NomadURL, st.ConsulURL)
	}
	if len(st.Cells) != 1 || st.Cells[0].ID != cell || st.Cells[0].Region != cell || st.Cells[0].State != topology.StateHealthy {
		t.Fatalf("cells %+v", st.Cells)
	}
	sum, err := bots.Run(ctx, bots.Config{GlobalURL: st.GlobalURL, Players: 2, Mode: "duel", Cell: cell, MatchTimeout: 90 * time.Second}, nil)
	if err != nil || sum.Finished != 2 || sum.MatchesCompleted != 1 {
		t.Fatalf("bots: %+v %v", sum, err)
	}
	// The global layer (a Nomad job run with --consul) registered itself.
	cc, err := consul.NewClient(&consul.Config{Address: strings.TrimPrefix(st.ConsulURL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		entries, _, err := cc.Health().Service(topology.ServiceGlobal, "", true, nil)
		if err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Service.Meta[topology.MetaAPI] != st.GlobalURL {
			return fmt.Errorf("passing global services: %d", len(entries))
		}
		return nil
	})
	list, _, err := st.Nomad().Client.Jobs().PrefixList(jobs.DGSJobID(cell) + "/dispatch-")
	if err != nil || len(list) == 0 {
		t.Fatalf("no DGS dispatched by Nomad: %v %v", list, err)
	}
	st.Close()
	closed = true
	if pids := processesOf(cell); len(pids) > 0 {
		t.Fatalf("processes left after Close: %v", pids)
	}
	if _, err := http.Get(st.NomadURL + "/v1/status/leader"); err == nil {
		t.Fatal("nomad agent still answering after Close")
	}
	if _, err := http.Get(st.ConsulURL + "/v1/status/leader"); err == nil {
		t.Fatal("consul agent still answering after Close")
	}
}
