package matchmaker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// Ticket states as reported by the cell API.
const (
	StateQueued    = "queued"
	StateMatched   = "matched" // claimed into a match; a server is being allocated
	StateReady     = "ready"   // the session runs; connect tokens are available
	StateExpired   = "expired"
	StateCancelled = "cancelled"
)

// Why a matched ticket went back to the queue (Ticket.RequeueReason).
const (
	// RequeueNotStarted: the match's server could not be allocated or
	// the session could not be recorded.
	RequeueNotStarted = "match_not_started"
	// RequeueAbandoned: the match stayed claimed past the janitor's
	// deadline (its matchmaker died between claim and ready).
	RequeueAbandoned = "match_abandoned"
)

// retention is how long a ticket stays readable after it left the queue.
const retention = 10 * time.Minute

// Ticket is a matchmaking ticket as stored in Redis.
type Ticket struct {
	ID        string
	Owner     string   // the player who submitted it; only they may cancel it
	Mode      string   // game mode name
	Players   []string // the owner and their party, owner first
	Rating    int
	LatencyMS int
	CreatedAt time.Time
	UpdatedAt time.Time
	State     string
	SessionID string // set once matched
	// Ready is the opaque session document the cell stored when the session
	// became ready; Tokens holds one connect token per player.
	Ready  string
	Tokens map[string]string
	// RequeueReason says why a ticket that was matched is queued again
	// (RequeueAbandoned, RequeueNotStarted); empty for a ticket that was
	// never matched.
	RequeueReason string
}

// Entry returns the pool entry of t.
func (t Ticket) Entry() Entry {
	return Entry{TicketID: t.ID, Rating: t.Rating, Size: len(t.Players), CreatedAt: t.CreatedAt, LatencyMS: t.LatencyMS}
}

// HasPlayer reports whether p is on the ticket.
func (t Ticket) HasPlayer(p string) bool {
	for _, x := range t.Players {
		if x == p {
			return true
		}
	}
	return false
}

// JoinRequest is what Store.Join queues.
type JoinRequest struct {
	Owner     string
	Mode      string
	Players   []string // includes Owner
	Rating    int      // the party's rating: its strongest player's (cell/party.go)
	LatencyMS int
}

// Store keeps the tickets and pools of one cell in Redis. It is safe for
// concurrent use by any number of processes.
type Store struct {
	c      rueidis.Client
	prefix string // "cg:{cell}:"
	modes  map[string]GameMode
	now    func() time.Time
}

// NewStore returns the store of cell's tickets for modes. now may be nil.
func NewStore(c rueidis.Client, cell string, modes []GameMode, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{c: c, prefix: "cg:{" + cell + "}:", modes: make(map[string]GameMode, len(modes)), now: now}
	for _, m := range modes {
		if err := m.Validate(); err != nil {
			return nil, err
		}
		if _, dup := s.modes[m.Name]; dup {
			return nil, fmt.Errorf("game mode %s configured twice", m.Name)
		}
		s.modes[m.Name] = m
	}
	return s, nil
}

// Mode returns the configured game mode called name.
func (s *Store) Mode(name string) (GameMode, bool) {
	m, ok := s.modes[name]
	return m, ok
}

// Key returns a key of this cell's keyspace (same hash slot as every other).
func (s *Store) Key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

func (s *Store) ticketKey(id string) string { return s.prefix + "t:" + id }
func (s *Store) poolKey(mode string) string { return s.prefix + "pool:" + mode }
func (s *Store) seqKey(mode string) string  { return s.prefix + "seq:" + mode }

// claimedKey is the sorted set of claimed (matched) ticket ids scored by
// their claim time in ms: the janitor's index of tickets that may be stuck.
func (s *Store) claimedKey() string { return s.prefix + "claimed" }

// joinScript queues a ticket if no player has an active ticket and the pool
// is under its cap.
// KEYS: ticket, pool, seq, active keys…, last keys…
// ARGV: id, cap, active ttl ms, entry, retention ms, nplayers, hash field/value…
var joinScript = rueidis.NewLuaScript(`
local n = tonumber(ARGV[6])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 'FULL' end
for i = 4, 3 + n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 'CONFLICT' end
end
for i = 4, 3 + n do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[3]) end
for i = 4 + n, 3 + 2 * n do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[5]) end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], seq, ARGV[4])
return 'OK'
`)

// Join queues a ticket. It returns ErrActiveTicket when a player already has
// one, *PoolFullError when the pool is at its cap.
func (s *Store) Join(ctx context.Context, r JoinRequest) (Ticket, error) {
	mode, ok := s.modes[r.Mode]
	if !ok {
		return Ticket{}, fmt.Errorf("join %q: %w", r.Mode, ErrUnknownMode)
	}
	if len(r.Players) == 0 || len(r.Players) > mode.TeamSize {
		return Ticket{}, fmt.Errorf("join: %w: party of %d for teams of %d", ErrInvalidTicket, len(r.Players), mode.TeamSize)
	}
	if ml := int(mode.MaxLatency / time.Millisecond); ml > 0 && r.LatencyMS > ml {
		return Ticket{}, fmt.Errorf("join: %w: %d ms > %d ms", ErrLatencyTooHigh, r.LatencyMS, ml)
	}
	now := s.now()
	t := Ticket{
		ID: uuid.NewString(), Owner: r.Owner, Mode: r.Mode, Players: r.Players, Rating: r.Rating,
		LatencyMS: r.LatencyMS, CreatedAt: now, UpdatedAt: now, State: StateQueued,
	}
	keys := make([]string, 0, 3+2*len(r.Players))
	keys = append(keys, s.ticketKey(t.ID), s.poolKey(r.Mode), s.seqKey(r.Mode))
	for _, p := range r.Players {
		keys = append(keys, s.prefix+"active:"+p)
	}
	for _, p := range r.Players {
		keys = append(keys, s.prefix+"last:"+p)
	}
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	args := []string{
		t.ID, strconv.Itoa(mode.MaxQueued), strconv.FormatInt((mode.TicketTTL + 5*time.Second).Milliseconds(), 10),
		t.Entry().String(), strconv.FormatInt((mode.TicketTTL + retention).Milliseconds(), 10), strconv.Itoa(len(r.Players)),
		"id", t.ID, "owner", t.Owner, "mode", t.Mode, "players", strings.Join(t.Players, ","),
		"rating", strconv.Itoa(t.Rating), "lat", strconv.Itoa(t.LatencyMS), "created", ms, "updated", ms,
		"state", StateQueued, "entry", t.Entry().String(),
	}
	res, err := joinScript.Exec(ctx, s.c, keys, args).ToString()
	if err != nil {
		return Ticket{}, fmt.Errorf("join: %w", err)
	}
	switch res {
	case "OK":
		return t, nil
	case "CONFLICT":
		return Ticket{}, ErrActiveTicket
	case "FULL":
		return Ticket{}, &PoolFullError{Mode: r.Mode, RetryAfter: 5 * time.Second}
	}
	return Ticket{}, fmt.Errorf("join: unexpected script reply %q", res)
}

// Get reads a ticket. A queued ticket older than its mode's TTL reads as
// expired even before a matchmaker got round to expiring it.
func (s *Store) Get(ctx context.Context, id string) (Ticket, error) {
	m, err := s.c.Do(ctx, s.c.B().Hgetall().Key(s.ticketKey(id)).Build()).AsStrMap()
	if err != nil {
		return Ticket{}, fmt.Errorf("get ticket %s: %w", id, err)
	}
	if len(m) == 0 {
		return Ticket{}, ErrNotFound
	}
	t := Ticket{ID: m["id"], Owner: m["owner"], Mode: m["mode"], State: m["state"], SessionID: m["session"], Ready: m["ready"], RequeueReason: m["requeued"]}
	if m["players"] != "" {
		t.Players = strings.Split(m["players"], ",")
	}
	t.Rating, _ = strconv.Atoi(m["rating"])
	t.LatencyMS, _ = strconv.Atoi(m["lat"])
	c, _ := strconv.ParseInt(m["created"], 10, 64)
	u, _ := strconv.ParseInt(m["updated"], 10, 64)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(c), time.UnixMilli(u)
	for k, v := range m {
		if p, ok := strings.CutPrefix(k, "tok:"); ok {
			if t.Tokens == nil {
				t.Tokens = make(map[string]string)
			}
			t.Tokens[p] = v
		}
	}
	if mode, ok := s.modes[t.Mode]; ok && t.State == StateQueued && s.now().Sub(t.CreatedAt) > mode.TicketTTL {
		t.State = StateExpired
	}
	return t, nil
}

// LastTicket returns the id of the latest ticket player was on.
func (s *Store) LastTicket(ctx context.Context, player string) (string, error) {
	id, err := s.c.Do(ctx, s.c.B().Get().Key(s.prefix+"last:"+player).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("last ticket of %s: %w", player, err)
	}
	return id, nil
}

// leaveScript moves a queued ticket to a final state (cancelled, expired),
// takes it out of its pool and frees its players.
// KEYS: ticket, pool. ARGV: target state, now ms, key prefix, retention ms.
var leaveScript = rueidis.NewLuaScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'NOTFOUND' end
if st ~= 'queued' then return st end
local id = redis.call('HGET', KEYS[1], 'id')
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'entry'))
for p in string.gmatch(redis.call('HGET', KEYS[1], 'players'), '[^,]+') do
  local k = ARGV[3] .. 'active:' .. p
  if redis.call('GET', k) == id then redis.call('DEL', k) end
end
return 'OK'
`)

func (s *Store) leave(ctx context.Context, id, mode, state string) error {
	res, err := leaveScript.Exec(ctx, s.c, []string{s.ticketKey(id), s.poolKey(mode)},
		[]string{state, strconv.FormatInt(s.now().UnixMilli(), 10), s.prefix, strconv.FormatInt(retention.Milliseconds(), 10)}).ToString()
	if err != nil {
		return fmt.Errorf("%s ticket %s: %w", state, id, err)
	}
	switch res {
	case "OK":
		return nil
	case "NOTFOUND":
		return ErrNotFound
	}
	return ErrNotCancellable
}

// Cancel cancels a queued ticket. Ownership is the caller's check.
func (s *Store) Cancel(ctx context.Context, t Ticket) error {
	return s.leave(ctx, t.ID, t.Mode, StateCancelled)
}

// claimScript moves every ticket of one match from queued to matched, or
// none of them.
// KEYS: pool, claimed, tickets…  ARGV: session id, now ms, entries…
// Reply: {1, players…} or {0, index of the first ticket no longer queued}.
var claimScript = rueidis.NewLuaScript(`
for i = 3, #KEYS do
  if redis.call('HGET', KEYS[i], 'state') ~= 'queued' then
    redis.call('ZREM', KEYS[1], ARGV[i])
    return {0, i - 2}
  end
end
local out = {1}
for i = 3, #KEYS do
  redis.call('HSET', KEYS[i], 'state', 'matched', 'session', ARGV[1], 'updated', ARGV[2])
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[2], redis.call('HGET', KEYS[i], 'id'))
  out[#out + 1] = redis.call('HGET', KEYS[i], 'players')
end
return out
`)

// Claim atomically takes the tickets of entries out of the queue for
// session sessionID. On success it returns each ticket's players; when one
// ticket is no longer queued it claims nothing and returns its index as stale.
func (s *Store) Claim(ctx context.Context, mode, sessionID string, entries []Entry) (players [][]string, stale int, err error) {
	keys := make([]string, 0, len(entries)+2)
	args := make([]string, 0, len(entries)+2)
	keys = append(keys, s.poolKey(mode), s.claimedKey())
	args = append(args, sessionID, strconv.FormatInt(s.now().UnixMilli(), 10))
	for _, e := range entries {
		keys = append(keys, s.ticketKey(e.TicketID))
		args = append(args, e.String())
	}
	arr, err := claimScript.Exec(ctx, s.c, keys, args).ToArray()
	if err != nil {
		return nil, -1, fmt.Errorf("claim %s: %w", sessionID, err)
	}
	if ok, _ := arr[0].AsInt64(); ok == 0 {
		idx, _ := arr[1].AsInt64()
		return nil, int(idx) - 1, nil
	}
	players = make([][]string, len(entries))
	for i := range entries {
		p, _ := arr[i+1].ToString()
		players[i] = strings.Split(p, ",")
	}
	return players, -1, nil
}

// requeueScript puts tickets claimed for a session back in the queue with
// a fresh sequence number (their created time, hence their window, stays)
// and records why.
// KEYS: pool, seq, claimed, tickets…  ARGV: session id, now ms, reason, entries…
var requeueScript = rueidis.NewLuaScript(`
local n = 0
for i = 4, #KEYS do
  if redis.call('HGET', KEYS[i], 'state') == 'matched' and redis.call('HGET', KEYS[i], 'session') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'state', 'queued', 'session', '', 'updated', ARGV[2], 'requeued', ARGV[3])
    redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[i])
    redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[i], 'id'))
    n = n + 1
  end
end
return n
`)

// Requeue returns the tickets of a match whose allocation failed to the
// queue.
func (s *Store) Requeue(ctx context.Context, mode, sessionID string, entries []Entry) error {
	return s.requeue(ctx, mode, sessionID, RequeueNotStarted, entries)
}

func (s *Store) requeue(ctx context.Context, mode, sessionID, reason string, entries []Entry) error {
	keys := []string{s.poolKey(mode), s.seqKey(mode), s.claimedKey()}
	args := []string{sessionID, strconv.FormatInt(s.now().UnixMilli(), 10), reason}
	for _, e := range entries {
		keys = append(keys, s.ticketKey(e.TicketID))
		args = append(args, e.String())
	}
	if err := requeueScript.Exec(ctx, s.c, keys, args).Error(); err != nil {
		return fmt.Errorf("requeue %s: %w", sessionID, err)
	}
	return nil
}

// readyScript marks every ticket of a match ready with its session
// document and connect tokens and frees their players, or, when any of
// them is no longer claimed for the session (requeued by the janitor,
// expired, forgotten), changes nothing and returns 0.
// KEYS: claimed, tickets…  ARGV: session id, ready doc, now ms, key prefix,
// then per ticket: player count, player, token, …
var readyScript = rueidis.NewLuaScript(`
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'state') ~= 'matched' or redis.call('HGET', KEYS[i], 'session') ~= ARGV[1] then return 0 end
end
local a = 5
for i = 2, #KEYS do
  redis.call('HSET', KEYS[i], 'state', 'ready', 'ready', ARGV[2], 'updated', ARGV[3])
  local n = tonumber(ARGV[a])
  for j = a + 1, a + 2 * n, 2 do redis.call('HSET', KEYS[i], 'tok:' .. ARGV[j], ARGV[j + 1]) end
  a = a + 1 + 2 * n
  local id = redis.call('HGET', KEYS[i], 'id')
  redis.call('ZREM', KEYS[1], id)
  for p in string.gmatch(redis.call('HGET', KEYS[i], 'players'), '[^,]+') do
    local k = ARGV[4] .. 'active:' .. p
    if redis.call('GET', k) == id then redis.call('DEL', k) end
  end
end
return 1
`)

// MarkReady stores the session document and tokens on every ticket of a
// match and frees their players, all or nothing. It returns ErrClaimLost
// when a ticket is no longer claimed for m's session; the caller must then
// give the match's server back (its tickets are already elsewhere).
func (s *Store) MarkReady(ctx context.Context, m Match, ready string, tokens map[string]string) error {
	keys := make([]string, 0, len(m.Tickets)+1)
	keys = append(keys, s.claimedKey())
	args := []string{m.SessionID, ready, strconv.FormatInt(s.now().UnixMilli(), 10), s.prefix}
	for _, t := range m.Tickets {
		keys = append(keys, s.ticketKey(t.Entry.TicketID))
		args = append(args, strconv.Itoa(len(t.Players)))
		for _, p := range t.Players {
			args = append(args, p, tokens[p])
		}
	}
	n, err := readyScript.Exec(ctx, s.c, keys, args).AsInt64()
	if err != nil {
		return fmt.Errorf("mark %s ready: %w", m.SessionID, err)
	}
	if n != 1 {
		return fmt.Errorf("mark %s ready: %w", m.SessionID, ErrClaimLost)
	}
	return nil
}

// SetToken replaces one player's connect token on a ready ticket (a token
// is re-minted when the stored one expired before the client read it).
func (s *Store) SetToken(ctx context.Context, ticketID, player, token string) error {
	return s.c.Do(ctx, s.c.B().Hset().Key(s.ticketKey(ticketID)).FieldValue().FieldValue("tok:"+player, token).Build()).Error()
}

// Queued returns how many tickets the pool of mode holds.
func (s *Store) Queued(ctx context.Context, mode string) (int64, error) {
	n, err := s.c.Do(ctx, s.c.B().Zcard().Key(s.poolKey(mode)).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("queued %s: %w", mode, err)
	}
	return n, nil
}

// readPool returns pool entries with a sequence number above after, at most
// limit of them, in sequence order.
func (s *Store) readPool(ctx context.Context, mode string, after float64, limit int64) ([]Entry, float64, error) {
	min := "(" + strconv.FormatFloat(after, 'f', -1, 64)
	zs, err := s.c.Do(ctx, s.c.B().Zrange().Key(s.poolKey(mode)).Min(min).Max("+inf").Byscore().Limit(0, limit).Withscores().Build()).AsZScores()
	if err != nil {
		return nil, after, fmt.Errorf("read pool %s: %w", mode, err)
	}
	out := make([]Entry, 0, len(zs))
	for _, z := range zs {
		e, err := ParseEntry(z.Member)
		if err != nil {
			return nil, after, err
		}
		out = append(out, e)
		after = z.Score
	}
	return out, after, nil
}

// Lease scripts: one matchmaker per pool.
var (
	renewScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	releaseScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// holdLease acquires or renews the lease of mode's pool for owner and
// reports whether owner holds it.
func (s *Store) holdLease(ctx context.Context, mode, owner string, ttl time.Duration, held bool) (bool, error) {
	key := s.prefix + "lease:" + mode
	if held {
		n, err := renewScript.Exec(ctx, s.c, []string{key}, []string{owner, strconv.FormatInt(ttl.Milliseconds(), 10)}).AsInt64()
		if err != nil {
			return false, fmt.Errorf("renew lease %s: %w", mode, err)
		}
		return n == 1, nil
	}
	err := s.c.Do(ctx, s.c.B().Set().Key(key).Value(owner).Nx().PxMilliseconds(ttl.Milliseconds()).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", mode, err)
	}
	return true, nil
}

func (s *Store) releaseLease(ctx context.Context, mode, owner string) error {
	return releaseScript.Exec(ctx, s.c, []string{s.prefix + "lease:" + mode}, []string{owner}).Error()
}

// expire moves a queued ticket past its TTL to expired.
func (s *Store) expire(ctx context.Context, mode string, e Entry) error {
	err := s.leave(ctx, e.TicketID, mode, StateExpired)
	if err == ErrNotCancellable || err == ErrNotFound {
		return nil
	}
	return err
}
