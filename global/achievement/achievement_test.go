package achievement_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/global/achievement"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newAchievements(t *testing.T) (*achievement.Achievements, *testenv.Database) {
	d := testenv.NewDatabase(t)
	a, err := achievement.New(achievement.Config{
		Achievements: []achievement.Definition{
			{ID: "duelist", Name: "Win 3 duels", Event: achievement.EventWin, GameMode: "duel", Goal: 3},
			{ID: "sharpshooter", Name: "Score 50 in a match", Kind: achievement.KindUnlock, Event: achievement.EventScore, Goal: 50},
			{ID: "regular", Name: "Play 2 matches", Event: achievement.EventMatch, Goal: 2},
		},
		MaxValueBytes: 64, MaxKeys: 2,
	}, achievement.Deps{DB: d.Pool})
	if err != nil {
		t.Fatal(err)
	}
	return a, d
}

func TestAdvance(t *testing.T) {
	a, d := newAchievements(t)
	ctx := context.Background()
	p := uuid.New()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	advance := func(f achievement.MatchFacts) []string {
		var got []string
		if err := db.RunTx(ctx, d.Pool, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			got, err = a.Advance(ctx, tx, p, f, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	steps := []struct {
		f    achievement.MatchFacts
		want string
	}{
		{achievement.MatchFacts{GameMode: "duel", Won: true, Score: 30}, ""},
		{achievement.MatchFacts{GameMode: "ffa", Won: true, Score: 40}, "regular"}, // ffa wins don't count for duelist
		{achievement.MatchFacts{GameMode: "duel", Won: true, Score: 60}, "sharpshooter"},
		{achievement.MatchFacts{GameMode: "duel", Won: false, Score: 0}, ""},
		{achievement.MatchFacts{GameMode: "duel", Won: true, Score: 90}, "duelist"},
		{achievement.MatchFacts{GameMode: "duel", Won: true, Score: 90}, ""}, // unlocked once
	}
	for i, s := range steps {
		if got := strings.Join(advance(s.f), ","); got != s.want {
			t.Fatalf("step %d: unlocked %q, want %q", i, got, s.want)
		}
	}
	list, err := a.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.UnlockedAt == nil || !s.UnlockedAt.Equal(now) || s.Progress != s.Goal {
			t.Fatalf("%s: %+v", s.ID, s)
		}
	}
}

func TestStorageHTTP(t *testing.T) {
	a, _ := newAchievements(t)
	me := uuid.NewString()
	mux := http.NewServeMux()
	a.Register(mux, testenv.AuthAs(me))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, key, body string, hdr ...string) (int, string, string) {
		req, _ := http.NewRequest(method, srv.URL+"/player/me/storage/"+key, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("ETag"), string(b)
	}
	check := func(gotCode, want int, what string) {
		t.Helper()
		if gotCode != want {
			t.Fatalf("%s: %d, want %d", what, gotCode, want)
		}
	}
	c, _, _ := do("GET", "settings", "")
	check(c, 404, "missing")
	c, _, _ = do("PUT", "settings", `{"vol":1}`)
	check(c, 428, "no precondition")
	c, tag, _ := do("PUT", "settings", `{"vol":1}`, "If-None-Match", "*")
	check(c, 201, "create")
	if tag != `"1"` {
		t.Fatalf("etag %q", tag)
	}
	c, _, _ = do("PUT", "settings", `{"vol":2}`, "If-None-Match", "*")
	check(c, 412, "create twice")
	c, tag, _ = do("PUT", "settings", `{"vol":2}`, "If-Match", `"1"`)
	check(c, 200, "update")
	c, _, _ = do("PUT", "settings", `{"vol":3}`, "If-Match", `"1"`)
	check(c, 412, "stale update")
	c, got, body := do("GET", "settings", "")
	check(c, 200, "get")
	if got != tag || body != `{"vol":2}` {
		t.Fatalf("get: %s %s", got, body)
	}
	c, _, _ = do("GET", "settings", "", "If-None-Match", tag)
	check(c, 304, "not modified")
	c, _, _ = do("PUT", "settings", `{"pad":"`+strings.Repeat("x", 100)+`"}`, "If-Match", tag)
	check(c, 413, "too large")
	c, _, _ = do("PUT", "settings", `not json`, "If-Match", tag)
	check(c, 400, "not json")
	c, _, _ = do("PUT", "bad%20key", `{}`, "If-None-Match", "*")
	check(c, 400, "bad key")
	c, _, _ = do("PUT", "two", `{}`, "If-None-Match", "*")
	check(c, 201, "second key")
	c, _, _ = do("PUT", "three", `{}`, "If-None-Match", "*")
	check(c, 413, "key quota")
	c, _, _ = do("PUT", "missing", `{}`, "If-Match", `"1"`)
	check(c, 412, "update missing")

	resp, err := http.Get(srv.URL + "/player/me/achievements")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("achievements: %v %v", resp, err)
	}
	resp.Body.Close()
}
