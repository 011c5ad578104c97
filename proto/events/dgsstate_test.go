package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The typed state must not change the JSON a DGS publishes: a heartbeat
// written with the old string field decodes to the constant and re-encodes
// to the same bytes.
func TestDGSStateJSONUnchanged(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, st := range DGSStates {
		want := `{"id":"d1","cell":"eu-west-1","state":"` + string(st) + `","game_addr":"127.0.0.1:7777","version":"v1","at":"2026-01-02T03:04:05Z"}`
		var h DGSHealth
		if err := json.Unmarshal([]byte(want), &h); err != nil {
			t.Fatal(err)
		}
		if h.State != st || !h.State.Valid() {
			t.Fatalf("decoded state %q, want %q (valid)", h.State, st)
		}
		got, err := json.Marshal(DGSHealth{ID: "d1", Cell: "eu-west-1", State: st, GameAddr: "127.0.0.1:7777", Version: "v1", At: at})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("encoded\n%s\nwant\n%s", got, want)
		}
	}
}

func TestDGSStateValid(t *testing.T) {
	wire := map[DGSState]string{
		DGSScheduled: "scheduled", DGSReady: "ready", DGSAllocated: "allocated",
		DGSShutdown: "shutdown", DGSUnhealthy: "unhealthy",
	}
	if len(DGSStates) != len(wire) {
		t.Fatalf("DGSStates has %d states, want %d", len(DGSStates), len(wire))
	}
	for st, s := range wire {
		if string(st) != s || !st.Valid() {
			t.Errorf("%q: wire %q valid %v", st, s, st.Valid())
		}
		if p, err := ParseDGSState(s); err != nil || p != st {
			t.Errorf("ParseDGSState(%q) = %q, %v", s, p, err)
		}
	}
	for _, bad := range []string{"", "Ready", "READY", "running", "ready "} {
		if DGSState(bad).Valid() {
			t.Errorf("%q is valid", bad)
		}
		if _, err := ParseDGSState(bad); err == nil || !strings.Contains(err.Error(), "unknown DGS state") {
			t.Errorf("ParseDGSState(%q) err = %v", bad, err)
		}
	}
}
