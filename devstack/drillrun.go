package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/client/bots"
	"github.com/cellgrid/cellgrid/proto/events"
)

// DrillConfig configures DrillFailover.
type DrillConfig struct {
	// Cut is the cell (and region) to cut; default the first cell.
	Cut string
	// Warmup is how long everything runs before the cut (default 15 s),
	// After how long the workload runs after it (default 15 s).
	Warmup, After time.Duration
	// Converge bounds the wait for the audit after the heal (default 60 s).
	Converge time.Duration
	// BotsPerCell play in every region at a time (default 2: one duel).
	BotsPerCell int
	// Shoppers buy items and send telemetry throughout (default 4).
	Shoppers int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// AuditLine compares what was accepted (2xx) with what the database holds.
type AuditLine struct {
	Accepted, InDB, Lost, Doubled int
}

// DrillReport is what DrillFailover measured.
type DrillReport struct {
	Cut string
	// FirstMatchAfterCut is the time from the cut until a new match was
	// ready in another cell (FirstMatchCell).
	FirstMatchAfterCut time.Duration
	FirstMatchCell     string
	// MatchesCompleted counts the matches bots finished; MatchesLost the
	// cut region's sessions that never ended.
	MatchesCompleted, MatchesLost int
	Purchases, Telemetry, Results AuditLine
	// Converged is false when the audit still showed losses at the deadline.
	Converged bool
}

// Print writes the report as `cellgrid drill failover` shows it.
func (r DrillReport) Print(w io.Writer) {
	fmt.Fprintf(w, "drill failover: cut %s\n", r.Cut)
	fmt.Fprintf(w, "  new matches elsewhere  %v after the cut (first in %s)\n", r.FirstMatchAfterCut.Round(time.Millisecond), r.FirstMatchCell)
	fmt.Fprintf(w, "  matches                %d completed, %d lost (sessions in %s that never ended)\n", r.MatchesCompleted, r.MatchesLost, r.Cut)
	fmt.Fprintln(w, "  audit (accepted 2xx vs database):")
	for _, l := range []struct {
		name string
		a    AuditLine
	}{{"purchases", r.Purchases}, {"telemetry", r.Telemetry}, {"results", r.Results}} {
		fmt.Fprintf(w, "    %-10s accepted %5d  in db %5d  lost %d  doubled %d\n", l.name, l.a.Accepted, l.a.InDB, l.a.Lost, l.a.Doubled)
	}
	if !r.Converged {
		fmt.Fprintln(w, "  audit did NOT converge before the deadline")
	}
}

// drillLedger records what the workload saw accepted.
type drillLedger struct {
	mu        sync.Mutex
	purchases map[string][]string // player → idempotency keys answered 2xx
	events    []string            // telemetry event ids answered 202
	sessions  []string            // matches bots completed
}

// DrillFailover runs the failover drill on a stack started with a WAN:
// bots play in every region while shoppers buy items and send telemetry;
// after Warmup one region is cut (relay link, NATS gateway, cell process)
// and failed over; the workload runs on for After; then the network heals
// and every accepted purchase, telemetry event and match result is
// checked against the database.
func (st *Stack) DrillFailover(ctx context.Context, cfg DrillConfig) (DrillReport, error) {
	if st.wan == nil {
		return DrillReport{}, errors.New("drill: the stack has no WAN")
	}
	if cfg.Cut == "" {
		cfg.Cut = st.Cells[0].ID
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 15 * time.Second
	}
	if cfg.After <= 0 {
		cfg.After = 15 * time.Second
	}
	if cfg.Converge <= 0 {
		cfg.Converge = 60 * time.Second
	}
	if cfg.BotsPerCell <= 0 {
		cfg.BotsPerCell = 2
	}
	if cfg.Shoppers <= 0 {
		cfg.Shoppers = 4
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "t+%5.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	rep := DrillReport{Cut: cfg.Cut}
	led := &drillLedger{purchases: map[string][]string{}}

	work, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var wg sync.WaitGroup
	cellCtx := map[string]context.CancelFunc{}
	for _, c := range st.Cells {
		cctx, cancel := context.WithCancel(work)
		cellCtx[c.ID] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.drillBots(cctx, c.ID, cfg.BotsPerCell, led)
		}()
	}
	for i := range cfg.Shoppers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.drillShopper(work, i, led); err != nil && work.Err() == nil {
				logf("shopper %d: %v", i, err)
			}
		}()
	}
	logf("workload running: %d bots per cell in %d cells, %d shoppers", cfg.BotsPerCell, len(st.Cells), cfg.Shoppers)

	// Two players ready to queue the moment the region goes.
	var probes []*client.Client
	for i := range 2 {
		c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
		if err == nil {
			_, err = c.LoginDevice(ctx, fmt.Sprintf("drill-after-cut-%d-%s", i, uuid.NewString()[:8]))
		}
		if err != nil {
			return rep, fmt.Errorf("drill: %w", err)
		}
		probes = append(probes, c)
	}
	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(cfg.Warmup):
	}

	cellCtx[cfg.Cut]() // its bots stop trying there
	cutAt := time.Now()
	if err := st.CutRegion(cfg.Cut); err != nil {
		return rep, err
	}
	logf("cut %s: relay link blackholed, gateway cut, cell stopped", cfg.Cut)
	if err := st.regionOp(ctx, events.RegionOp{Op: events.RegionOpFailover, Region: cfg.Cut}); err != nil {
		logf("region failover: %v", err)
	} else {
		logf("region %s failed over", cfg.Cut)
	}
	fctx, fcancel := context.WithDeadline(work, cutAt.Add(cfg.After))
	rep.FirstMatchAfterCut, rep.FirstMatchCell = firstMatchAfter(fctx, probes, cutAt, cfg.Cut, logf)
	fcancel()
	logf("new match ready in %s, %v after the cut", rep.FirstMatchCell, rep.FirstMatchAfterCut.Round(time.Millisecond))

	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(time.Until(cutAt.Add(cfg.After))):
	}
	stopWork()
	wg.Wait()
	logf("workload stopped; healing %s's network", cfg.Cut)
	if err := st.HealRegionNetwork(cfg.Cut); err != nil {
		return rep, err
	}

	deadline := time.Now().Add(cfg.Converge)
	for {
		var err error
		rep, err = st.audit(ctx, rep, led)
		if err != nil {
			return rep, err
		}
		rep.Converged = rep.Purchases.Lost+rep.Telemetry.Lost+rep.Results.Lost == 0
		if rep.Converged || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM game_sessions WHERE region = $1 AND status <> 'ended'`, cfg.Cut).Scan(&rep.MatchesLost); err != nil {
		return rep, fmt.Errorf("drill: lost matches: %w", err)
	}
	logf("audit done")
	return rep, nil
}

func (st *Stack) regionOp(ctx context.Context, op events.RegionOp) error {
	nc, err := st.nats.Server("global").Connect("cellgrid-drill")
	if err != nil {
		return err
	}
	defer nc.Close()
	b, _ := json.Marshal(op)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(rctx, events.RegionOpsSubject, b)
	if err != nil {
		return err
	}
	var r events.RegionOpReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return err
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

// drillBots plays duels pinned to cell until ctx ends.
func (st *Stack) drillBots(ctx context.Context, cell string, n int, led *drillLedger) {
	for ctx.Err() == nil {
		sum, err := bots.Run(ctx, bots.Config{GlobalURL: st.GlobalURL, Players: n, Mode: "duel", Cell: cell, MatchTimeout: time.Minute}, nil)
		if err == nil {
			led.mu.Lock()
			led.sessions = append(led.sessions, sum.Sessions...)
			led.mu.Unlock()
		}
		if err != nil || sum.Finished == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// drillShopper buys a potion and sends telemetry to a cell about once a
// second, recording what was accepted.
func (st *Stack) drillShopper(ctx context.Context, i int, led *drillLedger) error {
	c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		return err
	}
	sess, err := c.LoginDevice(ctx, fmt.Sprintf("drill-shopper-%d-%s", i, uuid.NewString()[:8]))
	if err != nil {
		return err
	}
	cell := st.Cells[i%len(st.Cells)]
	for ctx.Err() == nil {
		key := "drill-" + uuid.NewString()
		code, _, err := drillPost(ctx, sess.AccessToken, st.GlobalURL+"/store/purchase",
			map[string]any{"item_template_id": "potion", "quantity": 1, "idempotency_key": key})
		if err == nil && code/100 == 2 {
			led.mu.Lock()
			led.purchases[sess.PlayerID] = append(led.purchases[sess.PlayerID], key)
			led.mu.Unlock()
		}
		evs := []map[string]any{}
		for j := range 5 {
			evs = append(evs, map[string]any{"event_type": "drill.tick", "timestamp": time.Now().UTC(), "payload": map[string]any{"j": j}})
		}
		code, body, err := drillPost(ctx, sess.AccessToken, cell.API+"/game/telemetry", map[string]any{"events": evs})
		if err == nil && code == http.StatusAccepted {
			var out struct {
				EventIDs []string `json:"event_ids"`
			}
			if json.Unmarshal(body, &out) == nil {
				led.mu.Lock()
				led.events = append(led.events, out.EventIDs...)
				led.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// drillPost posts JSON as the player; a request the context cut short is
// an error (its outcome unknown, so not counted as accepted).
func drillPost(ctx context.Context, token, url string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	return res.StatusCode, rb, err
}

// firstMatchAfter queues the two prepared players at the first one's best
// cell until they get a ready match outside the cut cell (each attempt
// bounded, its tickets cancelled), and returns the time since cutAt.
func firstMatchAfter(ctx context.Context, players []*client.Client, cutAt time.Time, cut string, logf func(string, ...any)) (time.Duration, string) {
	for ctx.Err() == nil {
		cell, _, err := players[0].BestCell(ctx, client.ProbeConfig{})
		switch {
		case err != nil:
			logf("after the cut: %v", err)
		case cell.ID == cut:
			logf("after the cut: probes still choose %s", cut)
		default:
			at, err := matchBoth(ctx, players, cell)
			if err == nil {
				return at.Sub(cutAt), cell.ID
			}
			logf("after the cut: no match at %s: %v", cell.ID, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, "none"
}

// matchBoth queues every player at cell and reports when the last one's
// match was ready.
func matchBoth(ctx context.Context, players []*client.Client, cell client.Cell) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var mu sync.Mutex
	var last time.Time
	var errs error
	var wg sync.WaitGroup
	for _, c := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, lat, err := c.BestCell(ctx, client.ProbeConfig{})
			var tk string
			if err == nil {
				tk, err = c.Join(ctx, cell, client.JoinRequest{GameMode: "duel", LatenciesMS: lat})
			}
			if err == nil {
				if _, err = c.WaitMatch(ctx, cell, tk, 50*time.Millisecond); err != nil {
					cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					_ = c.Cancel(cctx, cell, tk)
					ccancel()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = errors.Join(errs, err)
				return
			}
			if now := time.Now(); now.After(last) {
				last = now
			}
		}()
	}
	wg.Wait()
	return last, errs
}

// purchaseKeyPrefix is the prefix global/store puts on a purchase's
// idempotency key in the transactions table.
const purchaseKeyPrefix = "purchase:"

// audit compares the ledger with the database.
func (st *Stack) audit(ctx context.Context, rep DrillReport, led *drillLedger) (DrillReport, error) {
	led.mu.Lock()
	defer led.mu.Unlock()
	rep.Purchases = AuditLine{}
	for player, keys := range led.purchases {
		rep.Purchases.Accepted += len(keys)
		prefixed := make([]string, len(keys))
		for i, k := range keys {
			prefixed[i] = purchaseKeyPrefix + k // how global/store keys its ledger rows
		}
		rows, err := st.pool.Query(ctx, `SELECT idempotency_key, count(*) FROM transactions
			WHERE player_id = $1 AND idempotency_key = ANY($2) GROUP BY idempotency_key`, player, prefixed)
		if err != nil {
			return rep, fmt.Errorf("audit purchases: %w", err)
		}
		found := 0
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return rep, err
			}
			found++
			if n > 1 {
				rep.Purchases.Doubled++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, err
		}
		rep.Purchases.InDB += found
	}
	rep.Purchases.Lost = rep.Purchases.Accepted - rep.Purchases.InDB

	rep.Telemetry = AuditLine{Accepted: len(led.events)}
	var distinct, total int
	if err := st.pool.QueryRow(ctx, `SELECT count(DISTINCT id), count(*) FROM game_event_log WHERE id = ANY($1::UUID[])`, led.events).Scan(&distinct, &total); err != nil {
		return rep, fmt.Errorf("audit telemetry: %w", err)
	}
	rep.Telemetry.InDB, rep.Telemetry.Doubled, rep.Telemetry.Lost = distinct, total-distinct, len(led.events)-distinct

	rep.MatchesCompleted = len(led.sessions)
	rep.Results = AuditLine{Accepted: len(led.sessions)}
	if err := st.pool.QueryRow(ctx, `SELECT count(DISTINCT event_id), count(*) FROM applied_events WHERE consumer = 'results' AND event_id = ANY($1)`, led.sessions).Scan(&distinct, &total); err != nil {
		return rep, fmt.Errorf("audit results: %w", err)
	}
	rep.Results.InDB, rep.Results.Doubled, rep.Results.Lost = distinct, total-distinct, len(led.sessions)-distinct
	return rep, nil
}
