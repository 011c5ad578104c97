package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/natscreds"
)

func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*q))]
}

// instantLauncher starts in-process servers that speak the DGS's NATS
// contract and whose matches end the moment they start: each answers an
// allocation and reports Ready right after (and every 100 ms).
// The benchmark then measures the fleet's allocation path, not a game
// server's match cycle or process start.
type instantLauncher struct{}

type instantHandle struct {
	nc   *nats.Conn
	stop chan struct{}
	done chan struct{}
}

func (h *instantHandle) Exited() <-chan struct{} { return h.done }

func (instantLauncher) Start(_ context.Context, spec LaunchSpec) (Handle, error) {
	creds, err := natscreds.ParseCreds(spec.Creds) // the credential the fleet minted for it
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(spec.NATSURL, append([]nats.Option{nats.Name("instant-dgs " + spec.ID)}, natscreds.Options(creds, nil)...)...)
	if err != nil {
		return nil, err
	}
	h := &instantHandle{nc: nc, stop: make(chan struct{}), done: make(chan struct{})}
	beat := func(state events.DGSState, session string) {
		b, _ := json.Marshal(events.DGSHealth{ID: spec.ID, Cell: spec.Cell, State: state, GameAddr: "127.0.0.1:40000",
			Version: spec.Version.Name, SessionID: session, At: time.Now()})
		_ = nc.Publish(events.DGSHealthSubject(spec.Cell, spec.ID), b)
	}
	if _, err := nc.Subscribe(events.DGSAllocateSubject(spec.Cell, spec.ID), func(m *nats.Msg) {
		var a events.Allocation
		if err := json.Unmarshal(m.Data, &a); err != nil {
			return
		}
		beat(events.DGSAllocated, a.SessionID) // confirms the allocation, before the reply, as the real DGS does
		ok, _ := json.Marshal(events.AllocationReply{OK: true, AllocationID: a.AllocationID})
		_ = m.Respond(ok)
		beat(events.DGSReady, "") // the match is over already
	}); err != nil {
		nc.Close()
		return nil, err
	}
	go func() {
		defer close(h.done)
		defer nc.Close()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			beat(events.DGSReady, "")
			select {
			case <-h.stop:
				beat(events.DGSShutdown, "")
				_ = nc.Flush()
				return
			case <-t.C:
			}
		}
	}()
	return h, nil
}

func (instantLauncher) Stop(ctx context.Context, h Handle) error {
	ih := h.(*instantHandle)
	select {
	case <-ih.stop:
	default:
		close(ih.stop)
	}
	select {
	case <-ih.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// concurrently runs op n times from workers goroutines and returns the
// latency of every successful op and how many times op reported a miss
// (retried at once, not timed as a success).
func concurrently(b *testing.B, n, workers int, op func() (miss bool, err error)) (lat []time.Duration, misses int, took time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := 0
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				if next >= n {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				for {
					s := time.Now()
					miss, err := op()
					d := time.Since(s)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					if miss {
						misses++
					} else {
						lat = append(lat, d)
					}
					mu.Unlock()
					if !miss {
						break
					}
					runtime.Gosched()
				}
			}
		})
	}
	wg.Wait()
	return lat, misses, time.Since(start)
}

// BenchmarkAllocateWarm measures allocations from a warm pool of 16
// servers, from 8 goroutines: picking a Ready server, the allocation
// request and reply over NATS, the state change. The servers are
// in-process and Ready again at once (instantLauncher), so the figure is
// the fleet's, not a game server's match cycle. Baseline in the same run
// and under the same concurrency: 8 goroutines doing bare NATS
// request/replies to an in-process responder over the same connection;
// the p99 ratio compares the two.
func BenchmarkAllocateWarm(b *testing.B) {
	const workers = 8
	const servers = 2 * workers // a Ready one is almost always there: few misses
	r := startFleetWith(b, Config{Buffer: servers, Max: servers}, instantLauncher{})
	waitReady(b, r.f, servers, "v1")
	ctx := context.Background()
	n := max(b.N, 2000)

	sub, err := r.nc.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	raw, _, rawTook := concurrently(b, n, workers, func() (bool, error) {
		_, err := r.nc.Request("bench.echo", []byte(`{"session_id":"x"}`), 2*time.Second)
		return false, err
	})

	b.ResetTimer()
	lat, misses, took := concurrently(b, n, workers, func() (bool, error) {
		_, err := r.f.Allocate(ctx, allocation("duel", 2))
		if errors.Is(err, ErrNoReadyServer) {
			return true, nil
		}
		return false, err
	})
	b.StopTimer()
	if len(lat) != n || len(raw) != n {
		b.Fatalf("%d allocations and %d baseline requests of %d", len(lat), len(raw), n)
	}
	b.ReportMetric(float64(len(lat))/took.Seconds(), "allocs/s")
	b.ReportMetric(float64(len(raw))/rawTook.Seconds(), "nats_req/s")
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds()), "alloc_p50_us")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds()), "alloc_p99_us")
	b.ReportMetric(float64(quantile(raw, 0.5).Microseconds()), "nats_p50_us")
	b.ReportMetric(float64(quantile(raw, 0.99).Microseconds()), "nats_p99_us")
	b.ReportMetric(float64(quantile(lat, 0.99))/float64(quantile(raw, 0.99)), "alloc/nats_p99")
	b.ReportMetric(float64(misses)/float64(len(lat)), "misses/alloc")
}
