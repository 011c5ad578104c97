package cell

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/cell/telemetry"
	"github.com/cellgrid/cellgrid/internal/httpapi/openapitest"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestOpenAPIDocument runs a cell and holds it to cell/openapi.json: the
// document validates, documents exactly the routes the cell registers, is
// served without a token, and the answers of a walk through every
// operation (successes and refusals) match its schemas and error codes.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := openapitest.Load(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	openapitest.CheckRoutes(t, doc, e.c.http.Routes())

	v, err := openapitest.NewValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	client := v.Client(t)
	call := func(method, path, player, ctype, body string, out any) int {
		t.Helper()
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, e.c.URL()+path, rb)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if player != "" {
			req.Header.Set("Authorization", "Bearer "+e.token(t, player))
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
			}
		}
		return res.StatusCode
	}
	want := func(got, want int, what string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: status %d, want %d", what, got, want)
		}
	}
	const jsonCT = "application/json"

	// The document itself, without a token.
	res, err := http.Get(e.c.URL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != jsonCT || !bytes.Equal(served, openAPIDocument) {
		t.Fatalf("GET /openapi.json: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(served))
	}
	want(call("GET", "/openapi.json", "", "", "", nil), 200, "openapi.json")
	want(call("GET", "/healthz", "", "", "", nil), 200, "healthz")
	testenv.Eventually(t, 10*time.Second, func() error {
		if code := call("GET", "/readyz", "", "", "", nil); code != 200 {
			return fmt.Errorf("readyz %d", code)
		}
		return nil
	})

	ps := newPlayers(4)
	join := func(p, mode string, party ...string) string {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"game_mode": mode, "party": append([]string{}, party...), "latencies_ms": map[string]int{cellID: 30}})
		var out struct {
			TicketID string `json:"ticket_id"`
		}
		want(call("POST", "/matchmaking/join", p, jsonCT, string(b), &out), 202, "join "+mode)
		return out.TicketID
	}
	// Refusals of join, each with a documented code.
	want(call("POST", "/matchmaking/join", "", jsonCT, `{"game_mode":"duel"}`, nil), 401, "join without token")
	want(call("POST", "/matchmaking/join", ps[0], jsonCT, `{"game_mode":"chess"}`, nil), 400, "unknown mode")
	want(call("POST", "/matchmaking/join", ps[0], jsonCT, `{"game_mode":"duel","x":1}`, nil), 400, "unknown field")
	want(call("POST", "/matchmaking/join", ps[0], jsonCT, `{"game_mode":"duel","party":["nope"]}`, nil), 400, "bad party")
	want(call("POST", "/matchmaking/join", ps[0], jsonCT, `{"game_mode":"duel","latencies_ms":{"`+cellID+`":900}}`, nil), 400, "latency")
	want(call("POST", "/matchmaking/join", ps[0], "text/plain", `{"game_mode":"duel"}`, nil), 415, "text body")
	want(call("POST", "/matchmaking/join", ps[0], jsonCT, `{"game_mode":"`+strings.Repeat("a", 70<<10)+`"}`, nil), 413, "huge body")

	// Parties: ps[0] leads, ps[1] is invited and accepts.
	var party partyView
	want(call("POST", "/parties", ps[0], "", "", &party), 201, "create party")
	want(call("POST", "/parties", ps[0], "", "", nil), 409, "a second party")
	pp := "/parties/" + party.PartyID
	want(call("POST", "/matchmaking/join", ps[0], jsonCT, `{"game_mode":"duo","party":["`+ps[1]+`"]}`, nil), 403, "join with an unconsenting player")
	want(call("POST", pp+"/invites", ps[1], jsonCT, `{"player_id":"`+ps[2]+`"}`, nil), 403, "invite by a non-leader")
	want(call("POST", pp+"/invites", ps[0], jsonCT, `{"player_id":"nope"}`, nil), 400, "invite a non-id")
	want(call("POST", pp+"/invites", ps[0], jsonCT, `{"player_id":"`+ps[1]+`"}`, &party), 200, "invite")
	want(call("POST", pp+"/invites", ps[0], jsonCT, `{"player_id":"`+ps[2]+`"}`, nil), 200, "invite another")
	want(call("POST", pp+"/invites", "", jsonCT, `{"player_id":"`+ps[1]+`"}`, nil), 401, "invite without token")
	want(call("GET", pp, ps[1], "", "", &party), 200, "invitee reads the party")
	want(call("GET", pp, ps[3], "", "", nil), 404, "outsider reads the party")
	want(call("GET", "/parties/6f1c3c4e-0000-4000-8000-000000000000", ps[0], "", "", nil), 404, "unknown party")
	want(call("POST", pp+"/accept", ps[3], "", "", nil), 403, "accept without an invitation")
	want(call("POST", pp+"/accept", ps[1], "", "", &party), 200, "accept")
	want(call("POST", pp+"/leave", ps[2], "", "", nil), 200, "decline")
	want(call("POST", pp+"/leave", ps[3], "", "", nil), 404, "leave a party one is not in")
	if !slices.Contains(party.Members, ps[1]) {
		t.Errorf("party = %+v", party)
	}

	// A queued ticket: status, someone else's, a second ticket, cancel.
	tk := join(ps[0], "duo", ps[1])
	var tv ticketView
	want(call("GET", "/matchmaking/status?ticket_id="+tk, ps[1], "", "", &tv), 200, "status")
	if tv.State != matchmaker.StateQueued || !slices.Contains(tv.Players, ps[1]) {
		t.Errorf("status = %+v", tv)
	}
	want(call("GET", "/matchmaking/status", ps[0], "", "", nil), 200, "status of the latest ticket")
	want(call("GET", "/matchmaking/status", ps[3], "", "", nil), 404, "status without a ticket")
	want(call("GET", "/matchmaking/status?ticket_id="+tk, ps[2], "", "", nil), 403, "someone else's ticket")
	want(call("GET", "/matchmaking/status?ticket_id="+tk, "", "", "", nil), 401, "status without token")
	want(call("POST", "/matchmaking/join", ps[1], jsonCT, `{"game_mode":"duel"}`, nil), 409, "second ticket")
	want(call("DELETE", "/matchmaking/tickets/"+tk, ps[1], "", "", nil), 403, "party member cancels")
	want(call("DELETE", "/matchmaking/tickets/"+tk, ps[0], "", "", nil), 200, "cancel")
	want(call("DELETE", "/matchmaking/tickets/"+tk, ps[0], "", "", nil), 409, "cancel twice")
	want(call("DELETE", "/matchmaking/tickets/6f1c3c4e-0000-4000-8000-000000000000", ps[0], "", "", nil), 404, "cancel unknown")
	want(call("DELETE", "/matchmaking/tickets/"+tk, "", "", "", nil), 401, "cancel without token")
	var left partyLeft
	want(call("POST", pp+"/leave", ps[1], "", "", &left), 200, "member leaves")
	want(call("POST", pp+"/leave", ps[0], "", "", &left), 200, "leader disbands")
	if left.State != "disbanded" {
		t.Errorf("leader left: %+v", left)
	}

	// The tiny pool holds one ticket: 503 with Retry-After.
	join(ps[2], "tiny")
	want(call("POST", "/matchmaking/join", ps[3], jsonCT, `{"game_mode":"tiny"}`, nil), 503, "full pool")

	// A duel to ready: the status answer then carries the session.
	d1, d2 := newPlayers(1)[0], newPlayers(1)[0]
	t1, t2 := join(d1, "duel"), join(d2, "duel")
	for _, pt := range [][2]string{{d1, t1}, {d2, t2}} {
		testenv.Eventually(t, 30*time.Second, func() error {
			var v ticketView
			if code := call("GET", "/matchmaking/status?ticket_id="+pt[1], pt[0], "", "", &v); code != 200 || v.State != matchmaker.StateReady {
				return fmt.Errorf("status %d %+v", code, v)
			}
			if v.Session == nil || v.Session.ConnectToken == "" {
				return fmt.Errorf("ready without a session: %+v", v)
			}
			return nil
		})
	}

	// Telemetry intake.
	ev := fmt.Sprintf(`{"events":[{"event_type":"match.kill","timestamp":%q,"payload":{"weapon":"bow"}}]}`, time.Now().UTC().Format(time.RFC3339Nano))
	want(call("POST", "/game/telemetry", d1, jsonCT, ev, nil), 202, "telemetry")
	want(call("POST", "/game/telemetry", d1, jsonCT, `{"events":[]}`, nil), 400, "no events")
	want(call("POST", "/game/telemetry", d1, jsonCT, `{"events":[{"event_type":"Bad Type","timestamp":"2020-01-01T00:00:00Z"}]}`, nil), 400, "bad event")
	want(call("POST", "/game/telemetry", "", jsonCT, ev, nil), 401, "telemetry without token")

	// Draining: join answers 503 cell_draining.
	e.c.SetDraining(true)
	want(call("POST", "/matchmaking/join", ps[3], jsonCT, `{"game_mode":"duel"}`, nil), 503, "draining")
	e.c.SetDraining(false)

	// Every documented operation was exercised.
	seen := map[string]bool{}
	for _, s := range v.Seen() {
		seen[s[:strings.LastIndexByte(s, ' ')]] = true
	}
	for _, op := range openapitest.Operations(doc) {
		if !seen[op] {
			t.Errorf("operation %s was not exercised", op)
		}
	}
}

// TestOpenAPISchemasMatchGoTypes fails when a field is added to, removed
// from or made optional in a type the API writes or reads, and the
// document's schema was not changed with it.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc, err := openapitest.Load(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	openapitest.CheckSchemas(t, doc, map[string]any{
		"Ticket": ticketView{}, "Session": sessionView{}, "Party": partyView{}, "PartyLeft": partyLeft{},
	}, map[string]any{
		"JoinRequest": joinRequest{}, "PartyInvite": partyInvite{}, "TelemetryBatch": telemetry.IntakeRequest{}, "TelemetryEvent": telemetry.IntakeEvent{},
	})
}
