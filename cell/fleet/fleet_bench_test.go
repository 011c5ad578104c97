package fleet

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*q))]
}

// BenchmarkAllocateWarm measures allocations from a warm pool of 8 DGS
// processes whose matches last 1ms (so servers cycle back to Ready), from 8
// goroutines; a goroutine that finds no Ready server retries (a miss, not
// timed). Baseline in the same run: a bare NATS request/reply to an
// in-process responder over the same connection.
func BenchmarkAllocateWarm(b *testing.B) {
	r := startFleet(b, Config{Buffer: 8, Max: 8, Version: testVersion("v1", "--wait-for-players=1ms")})
	ctx := context.Background() // startFleet made the match stream the servers publish to
	waitReady(b, r.f, 8, "v1")

	sub, err := r.nc.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	raw := make([]time.Duration, 0, 2000)
	for range 2000 {
		s := time.Now()
		if _, err := r.nc.Request("bench.echo", []byte(`{"session_id":"x"}`), 2*time.Second); err != nil {
			b.Fatal(err)
		}
		raw = append(raw, time.Since(s))
	}

	var next, misses atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				for {
					s := time.Now()
					_, err := r.f.Allocate(ctx, allocation("duel", 2))
					if errors.Is(err, ErrNoReadyServer) {
						misses.Add(1)
						time.Sleep(200 * time.Microsecond)
						continue
					}
					if err != nil {
						b.Error(err)
						return
					}
					d := time.Since(s)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/el.Seconds(), "allocs/s")
	b.ReportMetric(float64(quantile(lat, 0.5).Microseconds()), "alloc_p50_us")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds()), "alloc_p99_us")
	b.ReportMetric(float64(quantile(raw, 0.5).Microseconds()), "nats_rtt_p50_us")
	b.ReportMetric(float64(quantile(lat, 0.99))/float64(quantile(raw, 0.99)), "alloc/nats_p99_ratio")
	b.ReportMetric(float64(misses.Load())/float64(len(lat)), "misses/alloc")
}
