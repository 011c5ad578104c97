package cell

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/proto/events"
)

// runRevocations keeps the verifier's deny list current: every revocation
// the global layer pushes (logout, erasure, refresh-token reuse) is added
// at once, and the list of revocations still in force is requested at
// start (retried until it answers), so a cell that starts late misses
// none. Entries expire with the tokens they match.
func (c *Cell) runRevocations(ctx context.Context) error {
	add := func(r events.Revocation) {
		c.verifier.Deny.Add(accesstoken.Denial{Family: r.Family, Subject: r.Subject, IssuedBefore: r.IssuedBefore, Expires: r.Expires})
	}
	sub, err := c.deps.NATS.Subscribe(events.RevocationSubject, func(m *nats.Msg) {
		var r events.Revocation
		if json.Unmarshal(m.Data, &r) == nil && (r.Family != "" || r.Subject != "") {
			add(r)
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := c.deps.NATS.RequestWithContext(rctx, events.RevocationListSubject, nil)
		cancel()
		if err == nil {
			var l events.RevocationList
			if json.Unmarshal(m.Data, &l) == nil {
				for _, r := range l.Revocations {
					add(r)
				}
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	<-ctx.Done()
	return nil
}
