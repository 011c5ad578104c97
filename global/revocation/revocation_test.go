package revocation

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
)

func TestRevokePublishesAndLists(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, "global")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // the handler goroutine reads it
	clock.Store(now.UnixNano())
	p, err := New(Config{AccessTTL: 15 * time.Minute}, Deps{NATS: nc, Now: func() time.Time { return time.Unix(0, clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	pushed, _ := nc.SubscribeSync(events.RevocationSubject)
	_ = nc.Flush()
	p.Revoke("fam-1", "player-1", "logout") // a family revocation keeps the player's other sessions
	p.Revoke("", "player-2", "erasure")
	for _, want := range []events.Revocation{
		{Family: "fam-1", IssuedBefore: now, Expires: now.Add(15 * time.Minute), Reason: "logout"},
		{Subject: "player-2", IssuedBefore: now, Expires: now.Add(15 * time.Minute), Reason: "erasure"},
	} {
		m, err := pushed.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var got events.Revocation
		if err := json.Unmarshal(m.Data, &got); err != nil || !got.IssuedBefore.Equal(want.IssuedBefore) ||
			got.Family != want.Family || got.Subject != want.Subject || !got.Expires.Equal(want.Expires) {
			t.Fatalf("pushed %+v, want %+v (%v)", got, want, err)
		}
	}
	// A starting cell asks for the list (Run may still be subscribing).
	var list events.RevocationList
	testenv.Eventually(t, 10*time.Second, func() error {
		m, err := nc.Request(events.RevocationListSubject, nil, time.Second)
		if err != nil {
			return err
		}
		return json.Unmarshal(m.Data, &list)
	})
	if len(list.Revocations) != 2 {
		t.Fatalf("list %+v", list)
	}
	// Once the tokens they match have expired, they are dropped.
	clock.Store(now.Add(16 * time.Minute).UnixNano())
	if l := p.List(); len(l) != 0 {
		t.Fatalf("after expiry: %+v", l)
	}
}
