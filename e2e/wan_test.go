package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// startWANStack runs a dev stack behind the default emulated WAN.
func startWANStack(t *testing.T, w *devstack.WAN, cells ...string) *devstack.Stack {
	t.Helper()
	d := testenv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: t.TempDir(), Cells: cells, DatabaseURL: d.URL, Ephemeral: true,
		DGSCommand: dgsCommand(t), DGSEnv: []string{dgsChildEnv + "=1"},
		DGSArgs:     []string{"--score-limit", "2", "--time-limit", "6s", "--wait-for-players", "20s"},
		FleetBuffer: 1, WAN: w,
	}, quietLog())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stack run: %v", err)
		}
	})
	return st
}

type joinRefusal struct {
	Error struct {
		Code    string `json:"code"`
		Details struct {
			Redirect struct {
				Cell string `json:"cell"`
				API  string `json:"api"`
			} `json:"redirect"`
		} `json:"details"`
	} `json:"error"`
}

func rawJoin(t *testing.T, api, token string, lat map[string]int) (int, joinRefusal) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"game_mode": "duel", "latencies_ms": lat})
	req, _ := http.NewRequest("POST", api+"/matchmaking/join", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out joinRefusal
	_ = json.Unmarshal(body, &out)
	return res.StatusCode, out
}

// TestWANLatencyRoutingAndRegionFailover: behind the default WAN a
// client's probes measure each region's emulated distance and choose
// eu-west-1; the latency it reports keeps it out of a region above the
// mode's limit; a region failover (the request `cellgrid region failover`
// sends) moves it to us-east-1 within 10 s, eu-west-1 refuses it with a
// redirect, and restore brings it back.
func TestWANLatencyRoutingAndRegionFailover(t *testing.T) {
	st := startWANStack(t, devstack.DefaultWAN(), "eu-west-1", "us-east-1", "ap-south-1")
	ctx := context.Background()
	for _, c := range st.Cells {
		if l := st.WANLink(c.ID); l == nil || c.Relay != l.Addr() || c.Beacon != l.Addr() {
			t.Fatalf("cell %s advertises relay %s beacon %s, not its WAN link", c.ID, c.Relay, c.Beacon)
		}
	}
	c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.LoginDevice(ctx, "wan-device-0000001")
	if err != nil {
		t.Fatal(err)
	}
	best := func() (client.Cell, map[string]int) {
		t.Helper()
		cell, lat, err := c.BestCell(ctx, client.ProbeConfig{Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return cell, lat
	}
	// Every probe is at least the emulated distance; the nearest region
	// wins (retried: on a loaded machine one probe round can be noisy).
	var cell client.Cell
	var lat map[string]int
	testenv.Eventually(t, 30*time.Second, func() error {
		cell, lat = best()
		for id, floor := range map[string]int{"eu-west-1": 40, "us-east-1": 160, "ap-south-1": 300} {
			if lat[id] < floor {
				t.Fatalf("probe RTT to %s %d ms, below the emulated %d ms", id, lat[id], floor)
			}
		}
		if cell.ID != "eu-west-1" {
			return fmt.Errorf("best cell %s (latencies %v), want eu-west-1", cell.ID, lat)
		}
		return nil
	})
	t.Logf("probe RTT ms: %v", lat)
	// ap-south-1 is beyond the modes' 200 ms limit: refused there.
	var ap client.Cell
	cells, _ := c.Topology(ctx)
	for _, x := range cells {
		if x.ID == "ap-south-1" {
			ap = x
		}
	}
	if code, out := rawJoin(t, ap.API, sess.AccessToken, lat); code != http.StatusBadRequest || out.Error.Code != "latency_too_high" {
		t.Fatalf("join at ap-south-1 with %d ms: %d %+v", lat["ap-south-1"], code, out)
	}

	opsCreds, err := natscreds.LoadCreds(st.OpsCredsFile()) // region ops need the ops credential
	if err != nil {
		t.Fatal(err)
	}
	ops, err := nats.Connect(st.ClusterNATSURL("us-east-1"), natscreds.Options(opsCreds, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	regionOp := func(op events.RegionOp) {
		t.Helper()
		b, _ := json.Marshal(op)
		testenv.Eventually(t, 20*time.Second, func() error {
			m, err := ops.Request(events.RegionOpsSubject, b, 5*time.Second)
			if err != nil {
				return err
			}
			var r events.RegionOpReply
			if err := json.Unmarshal(m.Data, &r); err != nil {
				return err
			}
			if r.Error != "" {
				return fmt.Errorf("%s", r.Error)
			}
			return nil
		})
	}
	euAPI := cell.API
	regionOp(events.RegionOp{Op: events.RegionOpFailover, Region: "eu-west-1"})
	failedAt := time.Now()
	testenv.Eventually(t, 10*time.Second, func() error {
		cell, lat = best()
		if cell.ID != "us-east-1" {
			return fmt.Errorf("best %s after failover", cell.ID)
		}
		return nil
	})
	t.Logf("routing moved to us-east-1 %v after the failover (RTT %d ms)", time.Since(failedAt), lat["us-east-1"])
	lat["eu-west-1"] = 41 // what the client measured before
	testenv.Eventually(t, 10*time.Second, func() error {
		code, out := rawJoin(t, euAPI, sess.AccessToken, lat)
		if code != http.StatusServiceUnavailable || out.Error.Code != "region_failed_over" || out.Error.Details.Redirect.Cell != "us-east-1" {
			return fmt.Errorf("join at eu-west-1: %d %+v", code, out)
		}
		return nil
	})
	tk, err := c.Join(ctx, cell, client.JoinRequest{GameMode: "duel", LatenciesMS: lat})
	if err != nil {
		t.Fatalf("join at us-east-1 (%d ms): %v", lat["us-east-1"], err)
	}
	if err := c.Cancel(ctx, cell, tk); err != nil {
		t.Fatal(err)
	}

	regionOp(events.RegionOp{Op: events.RegionOpRestore, Region: "eu-west-1"})
	testenv.Eventually(t, 10*time.Second, func() error {
		if cell, _ := best(); cell.ID != "eu-west-1" {
			return fmt.Errorf("best %s after restore", cell.ID)
		}
		return nil
	})
}

// TestWANLossyRegionMatchesComplete: with 10% loss each way on the only
// region's link, a duel of bots still completes over KCP; the bots report
// the probe RTT of the region and the input→ack percentiles.
func TestWANLossyRegionMatchesComplete(t *testing.T) {
	w := devstack.DefaultWAN()
	w.Loss = map[string]float64{"eu-west-1": 0.1}
	st := startWANStack(t, w, "eu-west-1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sum, err := bots.Run(ctx, bots.Config{GlobalURL: st.GlobalURL, Players: 2, Mode: "duel", MatchTimeout: 60 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Finished != 2 || sum.MatchesCompleted != 1 || len(sum.Errors) != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	p := sum.ProbeRTT["eu-west-1"]
	if p.N != 2 || p.P50 < 40*time.Millisecond || sum.Cells["eu-west-1"] != 2 {
		t.Fatalf("probe summary %+v cells %v", sum.ProbeRTT, sum.Cells)
	}
	if sum.InputRTT.N == 0 || sum.InputRTT.P50 < 40*time.Millisecond {
		t.Fatalf("input→ack %+v: not measured through the 40 ms path", sum.InputRTT)
	}
	s := st.WANLink("eu-west-1").Stats()
	if s.UpDropped == 0 || s.DownDropped == 0 {
		t.Fatalf("link dropped nothing: %+v", s)
	}
	t.Logf("10%% loss: relay RTT p50 %v p99 %v; input→ack p50 %v p99 %v (n=%d); link %+v",
		sum.RelayRTT.P50, sum.RelayRTT.P99, sum.InputRTT.P50, sum.InputRTT.P99, sum.InputRTT.N, s)
}

// TestDrillFailover runs `cellgrid drill failover` in short: a region is
// cut during play, new matches land elsewhere, and after the heal every
// accepted purchase, telemetry event and match result is in the database
// exactly once.
func TestDrillFailover(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: t.TempDir(), DatabaseURL: d.URL, Ephemeral: true, WAN: devstack.DrillWAN(),
		DGSCommand: dgsCommand(t), DGSEnv: []string{dgsChildEnv + "=1"},
		DGSArgs: []string{"--time-limit", "5s", "--wait-for-players", "10s"},
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stack run: %v", err)
		}
	}()
	// After is a generous wait for the first match elsewhere (the issue asks
	// for 10 s; a loaded CI machine may need more), not a speed claim.
	rep, err := st.DrillFailover(ctx, devstack.DrillConfig{Cut: "eu-west-1", Warmup: 8 * time.Second, After: 30 * time.Second, Converge: 90 * time.Second, Shoppers: 3, Log: os.Stderr})
	rep.Print(os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Converged || rep.FirstMatchCell == "eu-west-1" || rep.FirstMatchCell == "none" {
		t.Fatalf("drill: %+v", rep)
	}
	for name, a := range map[string]devstack.AuditLine{"purchases": rep.Purchases, "telemetry": rep.Telemetry, "results": rep.Results} {
		if a.Accepted == 0 || a.Lost != 0 || a.Doubled != 0 || a.InDB != a.Accepted {
			t.Errorf("%s: %+v", name, a)
		}
	}
}
