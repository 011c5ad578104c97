package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cellgrid/cellgrid/proto/packet"
)

// Cell is one cell of the topology, as GET /topology returns it.
type Cell struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	API    string `json:"api"`
	Relay  string `json:"relay"`
	Beacon string `json:"beacon"`
	State  string `json:"state"`
}

// Joinable reports whether new tickets may go to the cell.
func (c Cell) Joinable() bool { return c.State == "healthy" }

// Topology fetches the cells from the global layer.
func (c *Client) Topology(ctx context.Context) ([]Cell, error) {
	var doc struct {
		Cells []Cell `json:"cells"`
	}
	if err := c.do(ctx, http.MethodGet, c.cfg.GlobalURL+"/topology", nil, &doc, false); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	return doc.Cells, nil
}

// ProbeConfig tunes Probe and BestCell.
type ProbeConfig struct {
	Pings    int           // per beacon; 0 means 5
	Interval time.Duration // between pings; 0 means 20 ms
	Timeout  time.Duration // per beacon overall; 0 means 1 s
	// Tolerance: BestCell treats round trips within this of the fastest as
	// equal and picks the lowest cell id among them; 0 means
	// DefaultTolerance, negative means exact comparison.
	Tolerance time.Duration
}

// DefaultTolerance is ProbeConfig.Tolerance's default. Measurement noise on
// one machine (all cells on loopback, a busy CPU) stays well under it;
// regions apart differ by tens of milliseconds.
const DefaultTolerance = 5 * time.Millisecond

// MaxNoiseTolerance caps how far BestCell widens the tolerance when its
// probes were noisy (twice the largest ping spread): regions apart differ by
// far more.
const MaxNoiseTolerance = 25 * time.Millisecond

// Probe pings every joinable cell's beacon over UDP and returns the lowest
// round trip per cell id (see PingBeacon). Cells that never answer are absent.
func Probe(ctx context.Context, cells []Cell, cfg ProbeConfig) map[string]time.Duration {
	rtts, _ := probe(ctx, cells, cfg)
	return rtts
}

// probe is Probe that also returns the measurement noise: the largest
// spread (slowest minus fastest ping) seen at any beacon.
func probe(ctx context.Context, cells []Cell, cfg ProbeConfig) (map[string]time.Duration, time.Duration) {
	if cfg.Pings <= 0 {
		cfg.Pings = 5
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	var mu sync.Mutex
	out := map[string]time.Duration{}
	var noise time.Duration
	var wg sync.WaitGroup
	for _, cell := range cells {
		if !cell.Joinable() || cell.Beacon == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rtts, err := pingBeacon(ctx, cell.Beacon, cfg)
			if err == nil {
				mu.Lock()
				out[cell.ID] = slices.Min(rtts)
				noise = max(noise, slices.Max(rtts)-slices.Min(rtts))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, noise
}

// PingBeacon sends cfg.Pings PINGs to addr and returns the lowest RTT: the
// path's own delay is in every ping, while a busy CPU or a queue only ever
// adds to it, so the minimum is the estimate that noise disturbs least (a
// median on a loaded machine drifted past DefaultTolerance and split a swarm
// of bots across equal cells).
func PingBeacon(ctx context.Context, addr string, cfg ProbeConfig) (time.Duration, error) {
	rtts, err := pingBeacon(ctx, addr, cfg)
	if err != nil {
		return 0, err
	}
	return slices.Min(rtts), nil
}

// pingBeacon returns the round trips of the PONGs that came back (at
// least one, or an error).
func pingBeacon(ctx context.Context, addr string, cfg ProbeConfig) ([]time.Duration, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("ping %s: %w", addr, err)
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("ping %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < cfg.Pings; i++ {
			now := uint64(time.Since(start))
			if _, err := conn.Write(packet.AppendPing(nil, packet.Ping{ClientTime: now, Seq: uint64(i), HasSeq: true})); err != nil {
				errc <- err
				return
			}
			time.Sleep(cfg.Interval)
		}
		errc <- nil
	}()
	var rtts []time.Duration
	buf := make([]byte, 64)
	for len(rtts) < cfg.Pings {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		c, err := packet.ParseControl(buf[:n])
		if err != nil || c.Type != packet.TypePong {
			continue
		}
		rtts = append(rtts, time.Since(start)-time.Duration(c.Ping.ClientTime))
	}
	_ = conn.SetDeadline(time.Now()) // unblock the writer if it is still sending
	<-errc
	if len(rtts) == 0 {
		return nil, fmt.Errorf("ping %s: no answer", addr)
	}
	return rtts, nil
}

// ErrNoCell means no joinable cell answered its beacon.
var ErrNoCell = errors.New("no joinable cell answered")

// BestCell fetches the topology, probes it, and returns the joinable cell
// with the lowest latency plus all measured latencies in milliseconds (the
// form matchmaking wants).
func (c *Client) BestCell(ctx context.Context, pc ProbeConfig) (Cell, map[string]int, error) {
	cells, err := c.Topology(ctx)
	if err != nil {
		return Cell{}, nil, err
	}
	rtts, noise := probe(ctx, cells, pc)
	ms := map[string]int{}
	for _, cell := range cells {
		if rtt, ok := rtts[cell.ID]; ok {
			ms[cell.ID] = int((rtt + time.Millisecond - 1) / time.Millisecond)
		}
	}
	best, ok := chooseCell(cells, rtts, tolerance(pc.Tolerance, noise))
	if !ok {
		return Cell{}, nil, ErrNoCell
	}
	return best, ms, nil
}

// tolerance is the tie tolerance BestCell uses: tol (0: DefaultTolerance,
// negative: exact), widened to twice the probes' noise up to
// MaxNoiseTolerance. Differences within the measurement's own noise are no
// differences: a loaded machine at times delays every ping of a probe by
// tens of milliseconds, and bots on one machine would split across equal
// cells. The cap keeps regions apart (tens of ms more) apart.
func tolerance(tol, noise time.Duration) time.Duration {
	switch {
	case tol < 0:
		return 0
	case tol == 0:
		tol = DefaultTolerance
	}
	return max(tol, min(2*noise, MaxNoiseTolerance))
}

// chooseCell returns the cell with the lowest round trip in rtts (cells
// absent from rtts are skipped). Round trips within tol of the lowest count
// as equal and the lowest cell id among them wins, so clients on one
// machine, whose probes differ only by noise, all choose the same cell
// (split across cells they would wait for opponents that queue elsewhere).
func chooseCell(cells []Cell, rtts map[string]time.Duration, tol time.Duration) (Cell, bool) {
	fastest, found := time.Duration(0), false
	for _, cell := range cells {
		if rtt, ok := rtts[cell.ID]; ok && (!found || rtt < fastest) {
			fastest, found = rtt, true
		}
	}
	if !found {
		return Cell{}, false
	}
	var best Cell
	found = false
	for _, cell := range cells {
		if rtt, ok := rtts[cell.ID]; ok && rtt <= fastest+tol && (!found || cell.ID < best.ID) {
			best, found = cell, true
		}
	}
	return best, true
}
