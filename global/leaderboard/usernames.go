package leaderboard

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// usernameCache maps player ids to usernames for board entries. Entries
// live for ttl (a rename shows up within it); when size is reached the map
// is dropped whole (cheap, and a board page refills it in one query).
type usernameCache struct {
	db   *pgxpool.Pool
	ttl  time.Duration
	size int
	now  func() time.Time

	mu sync.Mutex
	// mu guards m.
	m map[string]cachedName
}

type cachedName struct {
	name    string
	expires time.Time
}

func newUsernameCache(db *pgxpool.Pool, ttl time.Duration, size int, now func() time.Time) *usernameCache {
	return &usernameCache{db: db, ttl: ttl, size: size, now: now, m: map[string]cachedName{}}
}

// lookup returns usernames for ids ("" for unknown or erased players).
func (c *usernameCache) lookup(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	var miss []string
	now := c.now()
	c.mu.Lock()
	for _, id := range ids {
		if e, ok := c.m[id]; ok && now.Before(e.expires) {
			out[id] = e.name
		} else {
			miss = append(miss, id)
		}
	}
	c.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	rows, err := c.db.Query(ctx, `SELECT id::TEXT, coalesce(username, '') FROM players WHERE id = ANY($1::UUID[])`, miss)
	if err != nil {
		return nil, fmt.Errorf("usernames: %w", err)
	}
	defer rows.Close()
	found := make(map[string]string, len(miss))
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("usernames: %w", err)
		}
		found[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usernames: %w", err)
	}
	c.mu.Lock()
	if len(c.m)+len(miss) > c.size {
		c.m = map[string]cachedName{}
	}
	for _, id := range miss {
		out[id] = found[id]
		c.m[id] = cachedName{name: found[id], expires: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return out, nil
}
