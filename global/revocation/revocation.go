package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/proto/events"
)

// Config of a Publisher.
type Config struct {
	// AccessTTL is the access tokens' lifetime: a revocation is kept (and
	// matters) this long. Required.
	AccessTTL time.Duration
}

// Deps of a Publisher.
type Deps struct {
	NATS *nats.Conn    // required
	DB   *pgxpool.Pool // optional: recent family revocations are reloaded at start
	Log  *slog.Logger
	Now  func() time.Time
}

// Publisher publishes revocations and answers the cells' list requests.
type Publisher struct {
	cfg  Config
	deps Deps

	mu   sync.Mutex
	list []events.Revocation // guarded by mu; pruned when expired
}

// New returns a Publisher; no I/O.
func New(cfg Config, deps Deps) (*Publisher, error) {
	if cfg.AccessTTL <= 0 || deps.NATS == nil {
		return nil, errors.New("revocation: AccessTTL and NATS are required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Publisher{cfg: cfg, deps: deps}, nil
}

// Revoke withdraws the access tokens of family (or, with an empty family,
// every token of subject) issued until now, everywhere. A failed publish
// is logged: the cells still get it from the list when they ask.
func (p *Publisher) Revoke(family, subject, reason string) {
	now := p.deps.Now()
	r := events.Revocation{Family: family, Subject: subject, IssuedBefore: now, Expires: now.Add(p.cfg.AccessTTL), Reason: reason}
	if family != "" {
		r.Subject = "" // the family alone, so the player's other sessions live on
	}
	p.mu.Lock()
	p.list = append(p.pruneLocked(now), r)
	p.mu.Unlock()
	b, _ := json.Marshal(r)
	if err := p.deps.NATS.Publish(events.RevocationSubject, b); err != nil {
		p.deps.Log.Warn("revocation not published", "reason", reason, "err", err)
	}
}

func (p *Publisher) pruneLocked(now time.Time) []events.Revocation {
	keep := p.list[:0]
	for _, r := range p.list {
		if now.Before(r.Expires) {
			keep = append(keep, r)
		}
	}
	return keep
}

// List returns the revocations that still matter.
func (p *Publisher) List() []events.Revocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = p.pruneLocked(p.deps.Now())
	return append([]events.Revocation(nil), p.list...)
}

// Run reloads recent family revocations from the database, then answers
// list requests until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	if p.deps.DB != nil {
		if err := p.reload(ctx); err != nil {
			p.deps.Log.Warn("revocation: reload", "err", err)
		}
	}
	sub, err := p.deps.NATS.Subscribe(events.RevocationListSubject, func(m *nats.Msg) {
		b, _ := json.Marshal(events.RevocationList{Revocations: p.List()})
		_ = m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("revocation: subscribe: %w", err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	return nil
}

// reload adds the refresh families revoked within the last AccessTTL (a
// global layer that restarted still tells the cells about them).
func (p *Publisher) reload(ctx context.Context) error {
	now := p.deps.Now()
	rows, err := p.deps.DB.Query(ctx, `SELECT id::TEXT, revoked_at, COALESCE(revoke_reason, '') FROM refresh_token_families WHERE revoked_at > $1`,
		now.Add(-p.cfg.AccessTTL))
	if err != nil {
		return err
	}
	defer rows.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for rows.Next() {
		var r events.Revocation
		if err := rows.Scan(&r.Family, &r.IssuedBefore, &r.Reason); err != nil {
			return err
		}
		r.Expires = r.IssuedBefore.Add(p.cfg.AccessTTL)
		p.list = append(p.list, r)
	}
	return rows.Err()
}
