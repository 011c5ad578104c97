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
	"sync"
	"sync/atomic"
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
	// with the best beacon latency (on one machine all cells are equally
	// near, and bots split across cells would wait for each other forever).
	Cell string
	// Cheaters is how many of the bots send impossible moves.
	Cheaters int
	// MatchTimeout bounds one bot's whole loop; 0 means 2 minutes.
	MatchTimeout time.Duration
	// Poll is the matchmaking status poll interval; 0 means 100 ms.
	Poll time.Duration
}

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
	Players          int
	Finished         int
	MatchesCompleted int // distinct sessions that ended with END
	Errors           []string
	TimeToMatch      Percentiles
	RelayRTT         Percentiles
	// InputRTT is input sent → snapshot acknowledging it, through the relay.
	InputRTT Percentiles
	// ProbeRTT is each cell's beacon round trip as the bots measured it
	// when choosing a cell; Cells counts the bots that joined each cell.
	ProbeRTT map[string]Percentiles
	Cells    map[string]int
	// Sessions are the ids of the matches that ended with END.
	Sessions []string
}

// Percentiles of a sample.
type Percentiles struct {
	N        int
	P50, P99 time.Duration
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
	err         error
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
		cfg.MatchTimeout = 2 * time.Minute
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

	s := Summary{Players: cfg.Players}
	var ttm, rrtt, irtt []time.Duration
	sessions := map[string]bool{}
	s.ProbeRTT, s.Cells = probeSummary(results)
	for _, r := range results {
		if r.err != nil {
			s.Errors = append(s.Errors, r.err.Error())
			continue
		}
		s.Finished++
		ttm = append(ttm, r.timeToMatch)
		rrtt = append(rrtt, r.relayRTT...)
		irtt = append(irtt, r.inputRTT...)
		if r.ended {
			sessions[r.sessionID] = true
		}
	}
	s.MatchesCompleted = len(sessions)
	s.Sessions = slices.Sorted(maps.Keys(sessions))
	s.TimeToMatch, s.RelayRTT, s.InputRTT = percentiles(ttm), percentiles(rrtt), percentiles(irtt)
	return s, nil
}

func playOne(ctx context.Context, cfg Config, cheat bool, ctr *Counters) (res result) {
	c, err := client.New(client.Config{GlobalURL: cfg.GlobalURL})
	if err != nil {
		return result{err: err}
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	if _, err := c.LoginDevice(ctx, "bot-"+hex.EncodeToString(id[:])); err != nil {
		return result{err: err}
	}
	ctr.LoggedIn.Add(1)
	cell, lat, err := c.BestCell(ctx, client.ProbeConfig{})
	if err != nil {
		return result{err: err}
	}
	if cfg.Cell != "" && cell.ID != cfg.Cell {
		cells, err := c.Topology(ctx)
		if err != nil {
			return result{err: err}
		}
		if cell, err = pick(cells, cfg.Cell); err != nil {
			return result{err: err}
		}
	}
	res.cell, res.probes = cell.ID, lat
	start := time.Now()
	ticket, err := c.Join(ctx, cell, client.JoinRequest{GameMode: cfg.Mode, LatenciesMS: lat})
	if err != nil {
		return result{err: err}
	}
	ctr.Queued.Add(1)
	sess, err := c.WaitMatch(ctx, cell, ticket, cfg.Poll)
	ctr.Queued.Add(-1)
	if err != nil {
		return result{err: fmt.Errorf("wait for a match at %s: %w", cell.ID, err)}
	}
	res.timeToMatch = time.Since(start)
	res.sessionID = sess.ID
	gc, err := client.Play(ctx, sess)
	if err != nil {
		return result{err: err}
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
		res.err = err
		return res
	}
	_, res.ended = gc.End()
	ctr.Finished.Add(1)
	return res
}

// drive sends one input per snapshot until the match ends. Honest bots
// wander within the server's limits; cheaters move far too fast.
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
			return rtts, fmt.Errorf("play: %w", ctx.Err())
		case <-gc.Done():
			if _, ok := gc.End(); ok {
				return rtts, nil
			}
			return rtts, fmt.Errorf("play: connection ended: %v", gc.Err())
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
			fire := mrand.IntN(4) == 0 && (cheat || sinceFire > int(acc.FireCooldown)+1)
			if fire {
				sinceFire = 0
			}
			in := wire.Input{Seq: seq, DX: dx, DY: dy, Fire: fire, Aim: uint16(mrand.IntN(65536))}
			sent[seq] = time.Now()
			if err := gc.SendInput(in); err != nil {
				if _, ok := gc.End(); ok {
					return rtts, nil
				}
				return rtts, fmt.Errorf("play: send input: %w", err)
			}
		}
	}
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
