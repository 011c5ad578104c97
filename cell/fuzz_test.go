package cell

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// FuzzJoinRequest feeds arbitrary bodies to POST /matchmaking/join's
// decoder and checks. A refusal is always a 4xx *httpapi.Error; an accepted
// request names the caller first, then distinct canonical player ids, at
// most a party's worth, and a non-negative latency. Seeds:
// testdata/fuzz/FuzzJoinRequest and the f.Add calls.
func FuzzJoinRequest(f *testing.F) {
	for _, s := range []string{
		`{"game_mode":"duel"}`,
		`{"game_mode":"duo","party":["6f1c3c4e-0000-4000-8000-000000000000"],"latencies_ms":{"eu-west-1":30}}`,
		`{"game_mode":"duo","party":["6F1C3C4E-0000-4000-8000-000000000000","6f1c3c4e-0000-4000-8000-000000000000","urn:uuid:6f1c3c4e-0000-4000-8000-000000000000"]}`,
		`{"game_mode":"duo","party":["nope"]}`,
		`{"game_mode":"duel","latencies_ms":{"eu-west-1":-1}}`,
		`{"game_mode":"duel","latencies_ms":{"eu-west-1":1e99}}`,
		`{"game_mode":"duel","extra":1}`,
	} {
		f.Add([]byte(s))
	}
	me := "0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b"
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/matchmaking/join", bytes.NewReader(body))
		var req joinRequest
		err := httpapi.DecodeJSON(httptest.NewRecorder(), r, &req, 0)
		var players []string
		var lat int
		if err == nil {
			players, lat, err = parseJoin(req, me, "eu-west-1")
		}
		if err != nil {
			var he *httpapi.Error
			if !errors.As(err, &he) || he.Status < 400 || he.Status >= 500 {
				t.Fatalf("refusal is not a 4xx API error: %#v", err)
			}
			return
		}
		if len(players) == 0 || players[0] != me || len(players) > matchmaker.MaxPartySize || lat < 0 {
			t.Fatalf("accepted players %v latency %d", players, lat)
		}
		seen := map[string]bool{}
		for _, p := range players {
			id, err := uuid.Parse(p)
			if err != nil || id.String() != p || seen[p] {
				t.Fatalf("accepted player %q (%v) in %v", p, err, players)
			}
			seen[p] = true
		}
	})
}
