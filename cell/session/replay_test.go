package session

import (
	"context"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestReplayGuardAcrossRedisRestart: a nonce used before a restart (which
// forgets it) is still refused after it, because its token may predate
// the restart; tokens minted after the restart are guarded as before.
func TestReplayGuardAcrossRedisRestart(t *testing.T) {
	rd := testenv.NewRedis(t)
	ctx := context.Background()
	const maxAge = 32 * time.Second
	clock := time.Now().Add(5 * time.Second) // the server has been up a while
	g := NewReplayGuard(rd.Client, "c1", maxAge)
	g.now = func() time.Time { return clock }
	old := [16]byte{1}
	// A token minted now: ttl until expiry = maxAge.
	if first, err := g.FirstUse(ctx, old, maxAge); err != nil || !first {
		t.Fatalf("first use: %v %v", first, err)
	}
	if first, err := g.FirstUse(ctx, old, maxAge); err != nil || first {
		t.Fatalf("second use: %v %v", first, err)
	}

	rd.Restart(t)
	clock = time.Now().Add(3 * time.Second) // the new server is up 0s; tokens of 3s ago predate it
	testenv.Eventually(t, 10*time.Second, func() error {
		_, err := g.FirstUse(ctx, [16]byte{9}, maxAge)
		return err
	})
	// The old token, minted 3s+ before: refused although Redis forgot it
	// (retried while the client's connections recover; the refusal has no
	// side effect).
	var first bool
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		first, err = g.FirstUse(ctx, old, maxAge-3*time.Second-100*time.Millisecond)
		return err
	})
	if first {
		t.Fatal("pre-restart nonce accepted after the restart")
	}
	fresh := [16]byte{2}
	// A connection error right after the restart is retried, as the relay's
	// client does after REJECT unavailable; a nonce is never spent by one.
	var freshFirst bool
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		freshFirst, err = g.FirstUse(ctx, fresh, maxAge)
		return err
	})
	if !freshFirst {
		t.Fatal("fresh token after the restart: refused")
	}
	if first, err := g.FirstUse(ctx, fresh, maxAge); err != nil || first {
		t.Fatalf("fresh token replayed: %v %v", first, err)
	}
}
