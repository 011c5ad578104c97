package bots

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// Config configures a swarm.
type Config struct {
	GlobalURL string
	Players   int
	Mode      string
	// Cell, when set, pins every bot to that cell id instead of the one
	// with the best beacon latency. (On one machine all cells are equally
	// near; the client then picks the lowest cell id, so a swarm still
	// meets in one cell.)
	Cell string
	// Cheaters is how many of the bots send impossible moves.
	Cheaters int
	// MatchTimeout bounds one bot's whole loop: login, queueing and a whole
	// match; 0 means DefaultMatchTimeout.
	MatchTimeout time.Duration
	// Poll is the matchmaking status poll interval; 0 means 100 ms.
	Poll time.Duration
}

// DefaultMatchTimeout covers queueing plus a whole match at the DGS's
// production limits (3 min of play after up to 30 s waiting for players).
const DefaultMatchTimeout = 5 * time.Minute

// Counters are live progress counts, safe to read while Run works.
type Counters struct {
	LoggedIn atomic.Int64
	Queued   atomic.Int64
	Playing  atomic.Int64
	Finished atomic.Int64
	Errors   atomic.Int64
}

// Summary is what a swarm measured.
type Summary struct {
	Players          int `json:"players"`
	Finished         int `json:"finished"`
	MatchesCompleted int `json:"matches_completed"` // distinct sessions that ended with END
	// Failed is how many bots failed; Errors groups them by cause, most
	// frequent first.
	Failed int          `json:"failed"`
	Errors []ErrorCount `json:"errors"`
	// TimeToMatch is join → match found, for every bot that got a match
	// (even if it failed later).
	TimeToMatch Percentiles `json:"time_to_match"`
	RelayRTT    Percentiles `json:"relay_rtt"`
	// InputRTT is input sent → snapshot acknowledging it, through the relay.
	InputRTT Percentiles `json:"input_rtt"`
	// ProbeRTT is each cell's beacon round trip as the bots measured it
	// when choosing a cell; Cells counts the bots that joined each cell.
	ProbeRTT map[string]Percentiles `json:"probe_rtt,omitempty"`
	Cells    map[string]int         `json:"cells,omitempty"`
	// Sessions are the ids of the matches that ended with END.
	Sessions []string `json:"sessions,omitempty"`
}

// ErrorCount is one cause of failure and how many bots it stopped.
type ErrorCount struct {
	Count int    `json:"count"`
	Cause string `json:"cause"`
}

// Percentiles of a sample.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		return d[int(math.Ceil(q*float64(len(d))))-1]
	}
	return Percentiles{N: len(d), P50: at(0.50), P99: at(0.99)}
}

// result of one bot.
type result struct {
	err         error  // nil when the bot finished
	stage       string // where err happened: login, probe, join, queue, connect, play
	matched     bool
	timeToMatch time.Duration
	relayRTT    []time.Duration
	inputRTT    []time.Duration
	sessionID   string
	ended       bool
	cell        string         // where the bot joined
	probes      map[string]int // beacon RTT per cell, ms
}

// Run plays cfg.Players bots concurrently and returns their summary. The
// counters (may be nil) are updated live for progress display.
func Run(ctx context.Context, cfg Config, ctr *Counters) (Summary, error) {
	if cfg.Players <= 0 {
		return Summary{}, errors.New("bots: Players must be > 0")
	}
	if cfg.Mode == "" {
		cfg.Mode = "duel"
	}
	if cfg.MatchTimeout <= 0 {
		cfg.MatchTimeout = DefaultMatchTimeout
	}
	if ctr == nil {
		ctr = &Counters{}
	}
	results := make([]result, cfg.Players)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Players; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bctx, cancel := context.WithTimeout(ctx, cfg.MatchTimeout)
			defer cancel()
			results[i] = playOne(bctx, cfg, i < cfg.Cheaters, ctr)
			if results[i].err != nil {
				ctr.Errors.Add(1)
			}
		}()
	}
	wg.Wait()

	return summarize(cfg, results), nil
}

func summarize(cfg Config, results []result) Summary {
	s := Summary{Players: len(results)}
	var ttm, rrtt, irtt []time.Duration
	sessions := map[string]bool{}
	s.ProbeRTT, s.Cells = probeSummary(results)
	causes := map[string]int{}
	for _, r := range results {
		if r.matched {
			ttm = append(ttm, r.timeToMatch)
		}
		rrtt = append(rrtt, r.relayRTT...)
		irtt = append(irtt, r.inputRTT...)
		if r.err != nil {
			s.Failed++
			causes[cause(r.stage, r.err, cfg.MatchTimeout)]++
			continue
		}
		s.Finished++
		if r.ended {
			sessions[r.sessionID] = true
		}
	}
	for c, n := range causes {
		s.Errors = append(s.Errors, ErrorCount{Count: n, Cause: c})
	}
	slices.SortFunc(s.Errors, func(a, b ErrorCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Cause, b.Cause)
	})
	s.MatchesCompleted = len(sessions)
	s.Sessions = slices.Sorted(maps.Keys(sessions))
	s.TimeToMatch, s.RelayRTT, s.InputRTT = percentiles(ttm), percentiles(rrtt), percentiles(irtt)
	return s
}

// cause says in one line why a bot failed, and what to change when the
// answer is a flag: bots that failed for the same reason get the same text.
func cause(stage string, err error, timeout time.Duration) string {
	limit := fmt.Sprintf("--timeout (%s)", shortDuration(timeout))
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		switch stage {
		case stageQueue:
			return "queue: no match found before " + limit + "; bots queued in different cells never meet (pin them with --cell), an odd bot in a duel waits alone"
		case stagePlay:
			return "play: match did not end before " + limit + "; raise --timeout above the server's match time limit"
		default:
			return stage + ": did not finish before " + limit
		}
	case errors.Is(err, context.Canceled):
		return stage + ": interrupted"
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, stage+": ") {
		msg = stage + ": " + msg
	}
	if stage == stageLogin && errors.Is(err, syscall.ECONNREFUSED) {
		msg += "; is the dev stack (bin/cellgrid dev) running, or --global pointing at the global layer?"
	}
	return msg
}

// shortDuration prints 3m rather than 3m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Stages of a bot's loop, as error causes name them.
const (
	stageLogin   = "login"
	stageProbe   = "probe"
	stageJoin    = "join"
	stageQueue   = "queue"
	stageConnect = "connect"
	stagePlay    = "play"
)

func playOne(ctx context.Context, cfg Config, cheat bool, ctr *Counters) (res result) {
	fail := func(stage string, err error) result {
		res.stage, res.err = stage, err
		return res
	}
	c, err := client.New(client.Config{GlobalURL: cfg.GlobalURL})
	if err != nil {
		return fail(stageLogin, err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	if _, err := c.LoginDevice(ctx, "bot-"+hex.EncodeToString(id[:])); err != nil {
		return fail(stageLogin, err)
	}
	ctr.LoggedIn.Add(1)
	cell, lat, err := c.BestCell(ctx, client.ProbeConfig{})
	if err != nil {
		return fail(stageProbe, err)
	}
	if cfg.Cell != "" && cell.ID != cfg.Cell {
		cells, err := c.Topology(ctx)
		if err != nil {
			return fail(stageProbe, err)
		}
		if cell, err = pick(cells, cfg.Cell); err != nil {
			return fail(stageProbe, err)
		}
	}
	res.cell, res.probes = cell.ID, lat
	start := time.Now()
	ticket, err := c.Join(ctx, cell, client.JoinRequest{GameMode: cfg.Mode, LatenciesMS: lat})
	if err != nil {
		return fail(stageJoin, fmt.Errorf("at %s: %w", cell.ID, err))
	}
	ctr.Queued.Add(1)
	sess, err := c.WaitMatch(ctx, cell, ticket, cfg.Poll)
	ctr.Queued.Add(-1)
	if err != nil {
		return fail(stageQueue, fmt.Errorf("at %s: %w", cell.ID, err))
	}
	res.matched, res.timeToMatch = true, time.Since(start)
	res.sessionID = sess.ID
	gc, err := client.Play(ctx, sess)
	if err != nil {
		return fail(stageConnect, err)
	}
	defer gc.Close()
	ctr.Playing.Add(1)
	defer ctr.Playing.Add(-1)

	// Measure the relay's round trip in the background while playing.
	rttDone := make(chan []time.Duration, 1)
	go func() {
		var rtts []time.Duration
		for ctx.Err() == nil {
			select {
			case <-gc.Done():
				rttDone <- rtts
				return
			case <-time.After(200 * time.Millisecond):
			}
			if rtt, err := client.PingBeacon(ctx, sess.RelayAddr, client.ProbeConfig{Pings: 1, Timeout: 500 * time.Millisecond}); err == nil {
				rtts = append(rtts, rtt)
			}
		}
		rttDone <- rtts
	}()
	res.inputRTT, err = drive(ctx, gc, cheat)
	res.relayRTT = <-rttDone
	if err != nil {
		return fail(stagePlay, err)
	}
	_, res.ended = gc.End()
	ctr.Finished.Add(1)
	return res
}

// drive sends one input per snapshot until the match ends. Honest bots
// wander within the server's limits and shoot at the nearest opponent as
// often as the weapon allows, so matches end on the score limit rather
// than the clock; cheaters move far too fast and fire too often.
func drive(ctx context.Context, gc *gameconn.Client, cheat bool) ([]time.Duration, error) {
	acc := gc.Accept()
	step := int16(acc.MaxStep / 2)
	if cheat {
		step = int16(min(int(acc.MaxStep)*8, math.MaxInt16))
	}
	sent := map[uint32]time.Time{}
	var rtts []time.Duration
	var seq uint32
	sinceFire := int(acc.FireCooldown) + 1
	dx, dy := step, int16(0)
	// Honest bots keep away from the walls (inputs are applied a few ticks
	// after they are sent, so a margin of several steps) and respect the
	// weapon's cooldown, so the server never has to correct them.
	margin := int32(step) * 16
	for {
		select {
		case <-ctx.Done():
			return rtts, ctx.Err()
		case <-gc.Done():
			if _, ok := gc.End(); ok {
				return rtts, nil
			}
			if err := gc.Err(); err != nil {
				return rtts, fmt.Errorf("connection ended before the match did: %w", err)
			}
			return rtts, errors.New("connection ended before the match did")
		case snap := <-gc.Snapshots():
			if t, ok := sent[snap.AckSeq]; ok {
				rtts = append(rtts, time.Since(t))
				for s := range sent {
					if s <= snap.AckSeq {
						delete(sent, s)
					}
				}
			}
			if mrand.IntN(20) == 0 {
				dx, dy = randomDir(step)
			}
			if !cheat {
				for _, p := range snap.Players {
					if p.Slot != acc.Slot {
						continue
					}
					if (p.X < margin && dx < 0) || (p.X > acc.ArenaW-margin && dx > 0) {
						dx = -dx
					}
					if (p.Y < margin && dy < 0) || (p.Y > acc.ArenaH-margin && dy > 0) {
						dy = -dy
					}
				}
			}
			seq++
			sinceFire++
			aim, target := aimAt(snap, acc.Slot)
			fire := target && (cheat && mrand.IntN(4) == 0 || sinceFire > int(acc.FireCooldown)+1)
			if fire {
				sinceFire = 0
			}
			in := wire.Input{Seq: seq, DX: dx, DY: dy, Fire: fire, Aim: aim}
			sent[seq] = time.Now()
			if err := gc.SendInput(in); err != nil {
				if _, ok := gc.End(); ok {
					return rtts, nil
				}
				return rtts, fmt.Errorf("send input: %w", err)
			}
		}
	}
}

// aimAt returns the aim (1/65536 turn, as wire.Input wants) from slot's
// position to the nearest other connected player, and whether there is one.
func aimAt(snap wire.Snapshot, slot uint8) (uint16, bool) {
	var me *wire.PlayerState
	for i := range snap.Players {
		if snap.Players[i].Slot == slot {
			me = &snap.Players[i]
		}
	}
	if me == nil {
		return 0, false
	}
	best, found := math.Inf(1), false
	var aim uint16
	for _, p := range snap.Players {
		if p.Slot == slot || p.Flags&wire.FlagConnected == 0 {
			continue
		}
		dx, dy := float64(p.X-me.X), float64(p.Y-me.Y)
		if d := dx*dx + dy*dy; d < best {
			a := math.Atan2(dy, dx)
			if a < 0 {
				a += 2 * math.Pi
			}
			best, found, aim = d, true, uint16(int(a/(2*math.Pi)*65536)%65536)
		}
	}
	return aim, found
}

func randomDir(step int16) (int16, int16) {
	a := mrand.Float64() * 2 * math.Pi
	return int16(float64(step) * math.Cos(a)), int16(float64(step) * math.Sin(a))
}

func pick(cells []client.Cell, id string) (client.Cell, error) {
	for _, c := range cells {
		if c.ID == id {
			return c, nil
		}
	}
	return client.Cell{}, fmt.Errorf("cell %s is not in the topology", id)
}
