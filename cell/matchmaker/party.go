package matchmaker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// Parties form by consent: a leader creates a party and invites players by
// id; an invited player accepts (or declines) it themselves. Only accepted
// members may be put on the leader's ticket (the cell API checks it), so no
// player can queue, lock out or drag another into a match. A member may
// leave at any time; when the leader leaves, the party is disbanded. A
// player is in at most one party at a time. Parties live in the cell's
// Redis next to the tickets and are forgotten PartyTTL after their last
// change.
const (
	// MaxPartySize bounds a party's members (leader included) plus its
	// pending invitations.
	MaxPartySize = 8
	// PartyTTL is how long an unchanged party is kept.
	PartyTTL = 12 * time.Hour
)

// Party errors.
var (
	// ErrPartyNotFound: no such party (never created, disbanded or expired).
	ErrPartyNotFound = errors.New("matchmaker: party not found")
	// ErrInParty: the player is already in another party.
	ErrInParty = errors.New("matchmaker: player is already in a party")
	// ErrNotPartyLeader: only the leader may invite.
	ErrNotPartyLeader = errors.New("matchmaker: only the party leader may do this")
	// ErrNotInvited: the player was not invited to the party.
	ErrNotInvited = errors.New("matchmaker: player was not invited to this party")
	// ErrNotPartyMember: the player is neither a member nor invited.
	ErrNotPartyMember = errors.New("matchmaker: player is not in this party")
	// ErrPartyFull: MaxPartySize members and invitations.
	ErrPartyFull = errors.New("matchmaker: party is full")
)

// Party is a party as stored.
type Party struct {
	ID      string
	Leader  string
	Members []string // accepted members, the leader included
	Invites []string // invited, not yet accepted
}

// IsMember reports whether p accepted (or leads) the party.
func (p Party) IsMember(player string) bool { return slices.Contains(p.Members, player) }

// IsInvited reports whether p has a pending invitation.
func (p Party) IsInvited(player string) bool { return slices.Contains(p.Invites, player) }

func (s *Store) partyKey(id string) string        { return s.prefix + "party:" + id }
func (s *Store) partyMembersKey(id string) string { return s.prefix + "party:" + id + ":m" }
func (s *Store) partyInvitesKey(id string) string { return s.prefix + "party:" + id + ":i" }
func (s *Store) inPartyKey(player string) string  { return s.prefix + "inparty:" + player }

func (s *Store) partyKeys(id string) []string {
	return []string{s.partyKey(id), s.partyMembersKey(id), s.partyInvitesKey(id)}
}

// KEYS: party, members, invites, inparty(leader)  ARGV: id, leader, ttl ms
var createPartyScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[4]) == 1 then return 'INPARTY' end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'leader', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 'OK'
`)

// KEYS: party, members, invites, inparty(leader)  ARGV: leader, invitee, ttl ms, max
var invitePartyScript = rueidis.NewLuaScript(`
local leader = redis.call('HGET', KEYS[1], 'leader')
if not leader then return 'NOTFOUND' end
if leader ~= ARGV[1] then return 'NOTLEADER' end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 or redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return 'OK' end
if redis.call('SCARD', KEYS[2]) + redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[4]) then return 'FULL' end
redis.call('SADD', KEYS[3], ARGV[2])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 'OK'
`)

// KEYS: party, members, invites, inparty(player)  ARGV: player, id, ttl ms, max
var acceptPartyScript = rueidis.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'NOTFOUND' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'OK' end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then return 'NOTINVITED' end
if redis.call('EXISTS', KEYS[4]) == 1 then return 'INPARTY' end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[3])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 'OK'
`)

// KEYS: party, members, invites, inparty(player)  ARGV: player, inparty prefix
var leavePartyScript = rueidis.NewLuaScript(`
local leader = redis.call('HGET', KEYS[1], 'leader')
if not leader then return 'NOTFOUND' end
if leader == ARGV[1] then
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[2] .. m) end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 'DISBANDED'
end
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[4])
  return 'LEFT'
end
if redis.call('SREM', KEYS[3], ARGV[1]) == 1 then return 'DECLINED' end
return 'NOTMEMBER'
`)

// CreateParty makes leader the leader of a new party.
func (s *Store) CreateParty(ctx context.Context, leader string) (Party, error) {
	id := uuid.NewString()
	res, err := createPartyScript.Exec(ctx, s.c, append(s.partyKeys(id), s.inPartyKey(leader)),
		[]string{id, leader, ttlMS(PartyTTL)}).ToString()
	if err != nil {
		return Party{}, fmt.Errorf("create party: %w", err)
	}
	if res == "INPARTY" {
		return Party{}, fmt.Errorf("create party: %w", ErrInParty)
	}
	return Party{ID: id, Leader: leader, Members: []string{leader}}, nil
}

// InviteToParty records leader's invitation of invitee (idempotent).
func (s *Store) InviteToParty(ctx context.Context, id, leader, invitee string) error {
	res, err := invitePartyScript.Exec(ctx, s.c, append(s.partyKeys(id), s.inPartyKey(leader)),
		[]string{leader, invitee, ttlMS(PartyTTL), strconv.Itoa(MaxPartySize)}).ToString()
	if err != nil {
		return fmt.Errorf("invite to party %s: %w", id, err)
	}
	return partyResult("invite to party "+id, res)
}

// AcceptParty makes an invited player a member (idempotent for a member).
func (s *Store) AcceptParty(ctx context.Context, id, player string) error {
	res, err := acceptPartyScript.Exec(ctx, s.c, append(s.partyKeys(id), s.inPartyKey(player)),
		[]string{player, id, ttlMS(PartyTTL), strconv.Itoa(MaxPartySize)}).ToString()
	if err != nil {
		return fmt.Errorf("accept party %s: %w", id, err)
	}
	return partyResult("accept party "+id, res)
}

// LeaveParty takes player out of the party: a member leaves, an invitee
// declines, the leader disbands it. It returns "left", "declined" or
// "disbanded".
func (s *Store) LeaveParty(ctx context.Context, id, player string) (string, error) {
	res, err := leavePartyScript.Exec(ctx, s.c, append(s.partyKeys(id), s.inPartyKey(player)),
		[]string{player, s.prefix + "inparty:"}).ToString()
	if err != nil {
		return "", fmt.Errorf("leave party %s: %w", id, err)
	}
	switch res {
	case "LEFT", "DECLINED", "DISBANDED":
		return map[string]string{"LEFT": "left", "DECLINED": "declined", "DISBANDED": "disbanded"}[res], nil
	}
	return "", partyResult("leave party "+id, res)
}

// Party reads a party.
func (s *Store) Party(ctx context.Context, id string) (Party, error) {
	res := s.c.DoMulti(ctx,
		s.c.B().Hget().Key(s.partyKey(id)).Field("leader").Build(),
		s.c.B().Smembers().Key(s.partyMembersKey(id)).Build(),
		s.c.B().Smembers().Key(s.partyInvitesKey(id)).Build())
	leader, err := res[0].ToString()
	if rueidis.IsRedisNil(err) {
		return Party{}, fmt.Errorf("party %s: %w", id, ErrPartyNotFound)
	}
	if err != nil {
		return Party{}, fmt.Errorf("party %s: %w", id, err)
	}
	p := Party{ID: id, Leader: leader}
	if p.Members, err = res[1].AsStrSlice(); err != nil {
		return Party{}, fmt.Errorf("party %s: %w", id, err)
	}
	if p.Invites, err = res[2].AsStrSlice(); err != nil {
		return Party{}, fmt.Errorf("party %s: %w", id, err)
	}
	slices.Sort(p.Members)
	slices.Sort(p.Invites)
	return p, nil
}

// PartyOf returns the id of player's party, ErrPartyNotFound when none.
func (s *Store) PartyOf(ctx context.Context, player string) (string, error) {
	id, err := s.c.Do(ctx, s.c.B().Get().Key(s.inPartyKey(player)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", ErrPartyNotFound
	}
	if err != nil {
		return "", fmt.Errorf("party of %s: %w", player, err)
	}
	return id, nil
}

func partyResult(op, res string) error {
	var err error
	switch res {
	case "OK":
		return nil
	case "NOTFOUND":
		err = ErrPartyNotFound
	case "NOTLEADER":
		err = ErrNotPartyLeader
	case "NOTINVITED":
		err = ErrNotInvited
	case "INPARTY":
		err = ErrInParty
	case "FULL":
		err = ErrPartyFull
	case "NOTMEMBER":
		err = ErrNotPartyMember
	default:
		err = fmt.Errorf("unexpected script reply %q", res)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func ttlMS(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
