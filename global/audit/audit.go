package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cellgrid/cellgrid/internal/db"
)

// Outcomes of an action.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
)

// Entry is one audit row.
type Entry struct {
	ID        uuid.UUID       `json:"id"`
	At        time.Time       `json:"at"`
	ActorID   uuid.UUID       `json:"actor_id"`
	ActorRole string          `json:"actor_role"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Reason    string          `json:"reason"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	Outcome   string          `json:"outcome"`
}

// Page is one page of the log, newest first.
type Page struct {
	Entries []Entry `json:"entries"`
	// NextCursor continues the listing with older entries; empty at the end.
	NextCursor string `json:"next_cursor,omitempty"`
}

// ErrBadCursor is returned by List for a cursor it did not issue.
var ErrBadCursor = errors.New("audit: bad cursor")

// Limits of a page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Append writes e inside tx. before and after may be any JSON-encodable
// value (nil is stored as NULL). ID and At are chosen here.
func Append(ctx context.Context, tx pgx.Tx, e Entry, before, after any) (Entry, error) {
	var err error
	if e.Before, err = marshal(before); err != nil {
		return Entry{}, fmt.Errorf("audit %s: before: %w", e.Action, err)
	}
	if e.After, err = marshal(after); err != nil {
		return Entry{}, fmt.Errorf("audit %s: after: %w", e.Action, err)
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	e.ID = uuid.New()
	e.At = time.Now().UTC().Truncate(time.Microsecond)
	if _, err := tx.Exec(ctx, `INSERT INTO ops_audit (id, at, actor_id, actor_role, action, target, reason, before, after, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.ID, e.At, e.ActorID, e.ActorRole, e.Action, e.Target, e.Reason, nullJSON(e.Before), nullJSON(e.After), e.Outcome); err != nil {
		return Entry{}, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return e, nil
}

// Record appends e in a transaction of its own, for actions that are not
// database writes (a drain request over NATS).
func Record(ctx context.Context, pool *pgxpool.Pool, e Entry, before, after any) (Entry, error) {
	var out Entry
	err := db.RunTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = Append(ctx, tx, e, before, after)
		return err
	})
	return out, err
}

// List returns up to limit entries older than cursor ("" = the newest),
// newest first, optionally only those of one action.
func List(ctx context.Context, pool *pgxpool.Pool, cursor, action string, limit int) (Page, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	at, id := time.Now().Add(24*time.Hour), uuid.Max
	if cursor != "" {
		var err error
		if at, id, err = decodeCursor(cursor); err != nil {
			return Page{}, err
		}
	}
	rows, err := pool.Query(ctx, `SELECT id, at, actor_id, actor_role, action, target, reason, before, after, outcome
		FROM ops_audit
		WHERE (at < $1 OR (at = $1 AND id < $2)) AND ($3 = '' OR action = $3)
		ORDER BY at DESC, id DESC LIMIT $4`, at, id, action, limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("audit list: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var before, after []byte
		err := r.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorRole, &e.Action, &e.Target, &e.Reason, &before, &after, &e.Outcome)
		e.At = e.At.UTC()
		e.Before, e.After = rawOrNull(before), rawOrNull(after)
		return e, err
	})
	if err != nil {
		return Page{}, fmt.Errorf("audit list: %w", err)
	}
	p := Page{Entries: entries}
	if len(entries) > limit {
		p.Entries = entries[:limit]
		last := p.Entries[limit-1]
		p.NextCursor = encodeCursor(last.At, last.ID)
	}
	if p.Entries == nil {
		p.Entries = []Entry{}
	}
	return p, nil
}

func encodeCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id.String()))
}

func decodeCursor(s string) (time.Time, uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, ErrBadCursor
	}
	ts, ids, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, uuid.Nil, ErrBadCursor
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, uuid.Nil, ErrBadCursor
	}
	id, err := uuid.Parse(ids)
	if err != nil {
		return time.Time{}, uuid.Nil, ErrBadCursor
	}
	return at, id, nil
}

func marshal(v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("null"), nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	return json.Marshal(v)
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return string(b)
}

func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}
