package matchmaker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// parallelRate runs op n times over g goroutines and returns ops/s.
func parallelRate(n, g int, op func(i int) error) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, e
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// BenchmarkTicketIngest measures Join (one Lua script: cap check, active
// ticket check, hash, pool) against a raw SET round trip on the same
// server, both from 8 goroutines.
func BenchmarkTicketIngest(b *testing.B) {
	rd := testenv.NewRedis(b)
	m := testMode("duel", 2, 1)
	m.MaxQueued = 1 << 30
	st, err := NewStore(rd.Client, "bench", []GameMode{m}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c := rd.Client
	n := max(b.N, 1000)
	raw, err := parallelRate(n, 8, func(i int) error {
		return c.Do(ctx, c.B().Set().Key("raw:"+strconv.Itoa(i)).Value("x").Build()).Error()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	joins, err := parallelRate(b.N, 8, func(i int) error {
		p := fmt.Sprintf("p%d", i)
		_, err := st.Join(ctx, JoinRequest{Owner: p, Mode: "duel", Players: []string{p}, Rating: 1000 + i%500})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(joins, "joins/s")
	b.ReportMetric(raw, "raw_set/s")
	b.ReportMetric(joins/raw, "join/raw_ratio")
}

// fill queues n duel tickets through pipelined join scripts.
func fill(b *testing.B, st *Store, c rueidis.Client, n int, rating func(i int) int) {
	ctx := context.Background()
	const batch = 2000
	for lo := 0; lo < n; lo += batch {
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for i := lo; i < min(lo+batch, n); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := "p" + strconv.Itoa(i)
				if _, err := st.Join(ctx, JoinRequest{Owner: p, Mode: "duel", Players: []string{p}, Rating: rating(i)}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
}

// BenchmarkTick100kQueued measures one steady-state tick of a pool holding
// 100,000 tickets that cannot match (ratings 1,000 apart): lease renewal,
// incremental sync, the expiry scan and Form over the whole pool. The
// baseline is Form alone on the same entries, in the same run.
func BenchmarkTick100kQueued(b *testing.B) {
	rd := testenv.NewRedis(b)
	m := testMode("duel", 2, 1)
	st, err := NewStore(rd.Client, "bench", []GameMode{m}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	fill(b, st, rd.Client, n, func(i int) int { return i * 1000 })
	mm, err := New(Config{}, Deps{Store: st, Handler: func(context.Context, Match) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	p := mm.Pool("duel")
	ctx := context.Background()
	first := time.Now()
	if st, err := p.Tick(ctx); err != nil || st.Queued != n {
		b.Fatalf("first tick: %+v %v", st, err)
	}
	fullLoad := time.Since(first)
	entries := make([]Entry, 0, n)
	for _, e := range p.mirror {
		entries = append(entries, e)
	}
	fs := time.Now()
	const formRuns = 5
	for range formRuns {
		Form(m, time.Now(), entries)
	}
	formOnly := time.Since(fs) / formRuns
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/tick")
	b.ReportMetric(float64(formOnly.Microseconds())/1000, "form_ms")
	b.ReportMetric(float64(per)/float64(formOnly), "tick/form_ratio")
	b.ReportMetric(float64(fullLoad.Microseconds())/1000, "full_load_ms")
}

// BenchmarkForm100kMatchable measures Form on 100,000 tickets that almost
// all match (ratings within one window): 50,000 duels per call. Its
// same-run baseline is sorting the same entries by rating, the least any
// matcher that pairs neighbours must do ("x-sort").
func BenchmarkForm100kMatchable(b *testing.B) {
	m := testMode("duel", 2, 1)
	now := time.Now()
	es := make([]Entry, 100_000)
	for i := range es {
		es[i] = Entry{TicketID: strconv.Itoa(i), Rating: 1000 + i%300, Size: 1, CreatedAt: now.Add(-time.Duration(i%30) * time.Second)}
	}
	var sortNs float64
	b.Run("sort", func(b *testing.B) {
		work := make([]Entry, len(es))
		for b.Loop() {
			copy(work, es)
			slices.SortFunc(work, func(x, y Entry) int { return cmp.Compare(x.Rating, y.Rating) })
		}
		sortNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("form", func(b *testing.B) {
		var matches int
		for b.Loop() {
			matches = len(Form(m, now, es))
		}
		b.ReportMetric(float64(matches), "matches/op")
		if sortNs <= 0 {
			b.Fatal("no sort baseline: run the whole benchmark")
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/sortNs, "x-sort")
	})
}
