package leaderboard_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/leaderboard"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// BenchmarkRead1M: the API's top-100 and around-me pages (season lookup,
// built-marker check, rank, range, usernames through the cache) on a board
// of 1M members, beside the raw Redis command(s) on the same key.
func BenchmarkRead1M(b *testing.B) {
	d := testenv.NewDatabase(b)
	r := testenv.NewRedis(b)
	ctx := context.Background()
	lb, err := leaderboard.New(leaderboard.Config{Boards: []leaderboard.Definition{{ID: "big"}}},
		leaderboard.Deps{DB: d.Pool, Redis: r.Client})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	key := "lb:big:s0"
	members := make([]string, n)
	c := r.Client
	var cmds rueidis.Commands
	for lo := 0; lo < n; lo += 1000 {
		z := c.B().Zadd().Key(key).ScoreMember()
		for i := lo; i < lo+1000; i++ {
			members[i] = uuid.NewString()
			z = z.ScoreMember(float64(rand.IntN(10_000_000)), members[i])
		}
		cmds = append(cmds, z.Build())
		if len(cmds) == 100 {
			for _, res := range c.DoMulti(ctx, cmds...) {
				if err := res.Error(); err != nil {
					b.Fatal(err)
				}
			}
			cmds = cmds[:0]
		}
	}
	if err := c.Do(ctx, c.B().Set().Key(key+":built").Value("1").Build()).Error(); err != nil {
		b.Fatal(err)
	}
	measure := func(b *testing.B, api, raw func(i int) error) {
		var apiD, rawD time.Duration
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if err := raw(i); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := api(i); err != nil {
				b.Fatal(err)
			}
			rawD += t1.Sub(t0)
			apiD += time.Since(t1)
		}
		b.ReportMetric(float64(apiD.Microseconds())/float64(b.N), "api_µs/op")
		b.ReportMetric(float64(rawD.Microseconds())/float64(b.N), "raw_µs/op")
		b.ReportMetric(float64(apiD)/float64(rawD), "ratio")
	}
	b.Run("top100", func(b *testing.B) {
		measure(b, func(int) error {
			p, err := lb.Read(ctx, leaderboard.Query{Board: "big", Limit: 100})
			if err == nil && len(p.Entries) != 100 {
				b.Fatalf("%d entries", len(p.Entries))
			}
			return err
		}, func(int) error {
			return c.Do(ctx, c.B().Zrange().Key(key).Min("0").Max("99").Rev().Withscores().Build()).Error()
		})
	})
	b.Run("around_me", func(b *testing.B) {
		measure(b, func(i int) error {
			_, err := lb.Read(ctx, leaderboard.Query{Board: "big", Limit: 100, Around: members[(i*7919)%n]})
			return err
		}, func(i int) error {
			rank, err := c.Do(ctx, c.B().Zrevrank().Key(key).Member(members[(i*7919)%n]).Build()).AsInt64()
			if err != nil {
				return err
			}
			lo := max(rank-50, 0)
			return c.Do(ctx, c.B().Zrange().Key(key).Min(itoa(lo)).Max(itoa(lo+99)).Rev().Withscores().Build()).Error()
		})
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
