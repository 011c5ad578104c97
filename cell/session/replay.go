package session

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// ReplayGuard implements relay.ReplayGuard on Redis: SET NX PX per nonce,
// shared by every relay of the cell.
//
// A Redis restart without persistence forgets every nonce, so a token
// used before it could be used again until it expires. With MaxTokenAge
// set, the guard remembers when its Redis started (the epoch key, written
// on first use after a start from INFO's uptime, to the second) and refuses, as replayed,
// every token that may have been minted before then. A client already
// bound keeps its binding across the restart (the relay moves a binding
// by the token that created it without asking the guard); one that never
// used its pre-restart token needs a new one.
type ReplayGuard struct {
	rd          rueidis.Client
	prefix      string
	maxTokenAge time.Duration
	now         func() time.Time
}

// NewReplayGuard returns the guard of cell's connect-token nonces.
// maxTokenAge is the longest a token can live, its TTL plus the relay's
// leeway; 0 turns the restart epoch check off.
func NewReplayGuard(rd rueidis.Client, cell string, maxTokenAge time.Duration) *ReplayGuard {
	return &ReplayGuard{rd: rd, prefix: "cg:{" + cell + "}:", maxTokenAge: maxTokenAge, now: time.Now}
}

// guardScript records a nonce unless the token may predate the epoch.
// KEYS: nonce, epoch. ARGV: ttl ms, earliest mint time ms (or -1: no check).
// Reply: 1 first use, 0 used, -1 no epoch yet, -2 minted before the epoch.
var guardScript = rueidis.NewLuaScript(`
if tonumber(ARGV[2]) >= 0 then
  local ep = redis.call('GET', KEYS[2])
  if not ep then return -1 end
  if tonumber(ARGV[2]) < tonumber(ep) then return -2 end
end
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
`)

// FirstUse implements relay.ReplayGuard.
func (g *ReplayGuard) FirstUse(ctx context.Context, nonce [16]byte, ttl time.Duration) (bool, error) {
	ms := max(ttl.Milliseconds(), 1)
	minted := int64(-1)
	if g.maxTokenAge > 0 {
		minted = max(g.now().Add(ttl-g.maxTokenAge).UnixMilli(), 0)
	}
	keys := []string{g.prefix + "nonce:" + hex.EncodeToString(nonce[:]), g.epochKey()}
	args := []string{strconv.FormatInt(ms, 10), strconv.FormatInt(minted, 10)}
	for attempt := 0; ; attempt++ {
		r, err := guardScript.Exec(ctx, g.rd, keys, args).AsInt64()
		if err != nil {
			return false, fmt.Errorf("replay guard: %w", err)
		}
		switch {
		case r == 1:
			return true, nil
		case r == -1 && attempt == 0:
			if err := g.setEpoch(ctx); err != nil {
				return false, err
			}
			continue
		case r == -1:
			return false, fmt.Errorf("replay guard: epoch not set")
		}
		return false, nil
	}
}

func (g *ReplayGuard) epochKey() string { return g.prefix + "nonce-epoch" }

// setEpoch records when the Redis server started (now minus its uptime),
// unless another relay did first.
func (g *ReplayGuard) setEpoch(ctx context.Context) error {
	info, err := g.rd.Do(ctx, g.rd.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return fmt.Errorf("replay guard: redis info: %w", err)
	}
	up := int64(-1)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "uptime_in_seconds:"); ok {
			up, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if up < 0 {
		return fmt.Errorf("replay guard: redis info has no uptime")
	}
	// uptime_in_seconds is truncated: the server started up to a second
	// before now-uptime. Take the earliest bound, so no token minted after
	// the start is refused (one used in that second before a crash could
	// be replayed once).
	epoch := g.now().Add(-time.Duration(up+1) * time.Second).UnixMilli()
	if err := g.rd.Do(ctx, g.rd.B().Set().Key(g.epochKey()).Value(strconv.FormatInt(epoch, 10)).Nx().Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("replay guard: set epoch: %w", err)
	}
	return nil
}
