package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/rueidis"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/proto/events"
)

// ErrUnknownSession means a match result names a session this cell has
// no row for (yet: see Run).
var ErrUnknownSession = errors.New("session: unknown session")

// unknownResultDeliveries is how many times a result for an unknown
// session is tried (a second apart) before it is dropped.
const unknownResultDeliveries = 10

// Session statuses in game_sessions.status.
const (
	StatusRunning = "running"
	StatusEnded   = "ended"
	// StatusAborted: the session was recorded but its players were never
	// told (the cell could not mark their tickets ready); its server was
	// given back.
	StatusAborted = "aborted"
)

// Session is one match running on one DGS.
type Session struct {
	ID        string
	Mode      string
	Region    string
	DGSID     string
	GameAddr  netip.AddrPort
	Teams     [][]string
	StartedAt time.Time
}

// Players lists the session's players team by team.
func (s Session) Players() []string {
	var out []string
	for _, t := range s.Teams {
		out = append(out, t...)
	}
	return out
}

// Config of a Store. Zero fields take defaults.
type Config struct {
	Cell   string
	Region string
	// LiveTTL bounds how long a session stays live in Redis without a
	// result (a DGS that died mid-match). Default 2h.
	LiveTTL time.Duration
	// Duplicates is the match stream's de-duplication window. Default 10m.
	Duplicates time.Duration
}

// Store keeps sessions. Safe for concurrent use.
type Store struct {
	cfg    Config
	rd     rueidis.Client
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	log    *slog.Logger
	prefix string
	life   supervise.Lifecycle
}

// DefaultConfig returns every default in one place (Cell has none).
func DefaultConfig() Config {
	return Config{LiveTTL: 2 * time.Hour, Duplicates: 10 * time.Minute}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Cell == "" {
		return c, errors.New("session: Config.Cell required")
	}
	if c.LiveTTL <= 0 {
		c.LiveTTL = d.LiveTTL
	}
	if c.Duplicates <= 0 {
		c.Duplicates = d.Duplicates
	}
	if c.Region == "" {
		c.Region = c.Cell
	}
	return c, nil
}

// Deps are what a Store needs; all but Log are required.
type Deps struct {
	Redis rueidis.Client
	DB    *pgxpool.Pool
	NATS  *nats.Conn
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// New returns a Store. Nothing runs until Run (the match results
// consumer); the Store's other methods work at once.
func New(cfg Config, deps Deps) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Redis == nil || deps.DB == nil || deps.NATS == nil {
		return nil, errors.New("session: Redis, database and NATS are required")
	}
	js, err := jetstream.New(deps.NATS)
	if err != nil {
		return nil, fmt.Errorf("session: jetstream: %w", err)
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &Store{cfg: cfg, rd: deps.Redis, pool: deps.DB, js: js, log: log.With("component", "sessions"), prefix: "cg:{" + cfg.Cell + "}:"}, nil
}

func (s *Store) liveKey(id string) string { return s.prefix + "sess:" + id }

// EnsureStream creates the cell's match stream, placed in the NATS
// cluster named after the cell, unless it exists.
func (s *Store) EnsureStream(ctx context.Context) error {
	return events.EnsureMatchStream(ctx, s.js, s.cfg.Cell, s.cfg.Duplicates)
}

func (s *Store) publish(ctx context.Context, kind string, sess Session, at time.Time) error {
	ev := events.SessionEvent{Kind: kind, SessionID: sess.ID, Cell: s.cfg.Cell, GameMode: sess.Mode, Players: sess.Players(), DGSID: sess.DGSID, At: at}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := s.js.Publish(ctx, events.SessionEventSubject(s.cfg.Cell, kind), b, jetstream.WithMsgID(kind+"-"+sess.ID)); err != nil {
		return fmt.Errorf("publish %s %s: %w", kind, sess.ID, err)
	}
	return nil
}

// Found publishes match.found for a match that is about to get a server.
func (s *Store) Found(ctx context.Context, sess Session) error {
	return s.publish(ctx, "found", sess, time.Now())
}

type liveDoc struct {
	Mode     string `json:"mode"`
	DGSID    string `json:"dgs_id"`
	GameAddr string `json:"game_addr"`
	Started  int64  `json:"started_ms"`
}

// Start records a session that has a server: live in Redis, a row in
// game_sessions with its players, and session.started.
func (s *Store) Start(ctx context.Context, sess Session) error {
	if sess.StartedAt.IsZero() {
		sess.StartedAt = time.Now()
	}
	err := db.RunTx(ctx, s.pool, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO game_sessions (id, game_mode, region, status, dgs_id, dgs_addr, dgs_port, started_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
			sess.ID, sess.Mode, s.cfg.Region, StatusRunning, sess.DGSID, sess.GameAddr.Addr().String(), int(sess.GameAddr.Port()), sess.StartedAt); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		b := &pgx.Batch{}
		for team, ps := range sess.Teams {
			for _, p := range ps {
				b.Queue(`INSERT INTO game_session_players (session_id, player_id, team) VALUES ($1, $2, $3) ON CONFLICT (session_id, player_id) DO NOTHING`, sess.ID, p, team)
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("start session %s: %w", sess.ID, err)
	}
	doc, _ := json.Marshal(liveDoc{Mode: sess.Mode, DGSID: sess.DGSID, GameAddr: sess.GameAddr.String(), Started: sess.StartedAt.UnixMilli()})
	if err := s.rd.Do(ctx, s.rd.B().Set().Key(s.liveKey(sess.ID)).Value(string(doc)).PxMilliseconds(s.cfg.LiveTTL.Milliseconds()).Build()).Error(); err != nil {
		return fmt.Errorf("start session %s: live: %w", sess.ID, err)
	}
	return s.publish(ctx, "started", sess, sess.StartedAt)
}

// End closes a session from its DGS's result. It is idempotent: a
// redelivered result changes nothing and publishes nothing new.
func (s *Store) End(ctx context.Context, r events.MatchResult) error {
	if _, err := uuid.Parse(r.SessionID); err != nil {
		return fmt.Errorf("end session %q: %w", r.SessionID, err)
	}
	if r.EndedAt.IsZero() {
		r.EndedAt = time.Now()
	}
	result, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var sess Session
	err = db.RunTx(ctx, s.pool, func(ctx context.Context, tx pgx.Tx) error {
		sess = Session{ID: r.SessionID, DGSID: r.DGSID}
		// An aborted session keeps its status (its server was released
		// before any player was told) but records what its server said.
		if _, err := tx.Exec(ctx, `UPDATE game_sessions SET status = $2, ended_at = $3, result = $4 WHERE id = $1 AND status = $5`,
			r.SessionID, StatusEnded, r.EndedAt, result, StatusRunning); err != nil {
			return fmt.Errorf("update session: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT game_mode FROM game_sessions WHERE id = $1`, r.SessionID).Scan(&sess.Mode); err != nil {
			return fmt.Errorf("read session: %w", err)
		}
		b := &pgx.Batch{}
		for _, p := range r.Players {
			b.Queue(`UPDATE game_session_players SET score = $3 WHERE session_id = $1 AND player_id = $2`, r.SessionID, p.PlayerID, p.Score)
		}
		rows, err := tx.Query(ctx, `SELECT player_id::TEXT, team FROM game_session_players WHERE session_id = $1 ORDER BY team, player_id`, r.SessionID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p string
			var team int
			if err := rows.Scan(&p, &team); err != nil {
				rows.Close()
				return err
			}
			for len(sess.Teams) <= team {
				sess.Teams = append(sess.Teams, nil)
			}
			sess.Teams[team] = append(sess.Teams[team], p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("end session %s: %w", r.SessionID, ErrUnknownSession)
	}
	if err != nil {
		return fmt.Errorf("end session %s: %w", r.SessionID, err)
	}
	if err := s.rd.Do(ctx, s.rd.B().Del().Key(s.liveKey(r.SessionID)).Build()).Error(); err != nil {
		return fmt.Errorf("end session %s: live: %w", r.SessionID, err)
	}
	return s.publish(ctx, "ended", sess, r.EndedAt)
}

// Abort closes a session that started but will never get its players:
// its row becomes aborted, its live key goes (the relay refuses its
// tokens), and session.ended is published. Idempotent.
func (s *Store) Abort(ctx context.Context, sess Session) error {
	now := time.Now()
	err := db.RunTx(ctx, s.pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE game_sessions SET status = $2, ended_at = $3 WHERE id = $1 AND status = $4`,
			sess.ID, StatusAborted, now, StatusRunning)
		return err
	})
	if err != nil {
		return fmt.Errorf("abort session %s: %w", sess.ID, err)
	}
	if err := s.rd.Do(ctx, s.rd.B().Del().Key(s.liveKey(sess.ID)).Build()).Error(); err != nil {
		return fmt.Errorf("abort session %s: live: %w", sess.ID, err)
	}
	return s.publish(ctx, "ended", sess, now)
}

// Status returns a session's status from the database ("" if unknown).
func (s *Store) Status(ctx context.Context, id string) (string, error) {
	var st string
	err := s.pool.QueryRow(ctx, `SELECT status FROM game_sessions WHERE id = $1`, id).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return st, err
}

// SessionLive implements relay.SessionChecker: a session accepts players
// while its live key exists.
func (s *Store) SessionLive(ctx context.Context, id uuid.UUID) (bool, error) {
	n, err := s.rd.Do(ctx, s.rd.B().Exists().Key(s.liveKey(id.String())).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("session live %s: %w", id, err)
	}
	return n == 1, nil
}

// Run consumes the DGSs' match results (a durable consumer shared by
// every process of the cell) and ends their sessions, until ctx ends or
// Close is called. It fails when the consumer cannot be created or dies
// (its stream or consumer deleted).
func (s *Store) Run(ctx context.Context) error {
	ctx, done := s.life.Start(ctx)
	defer done()
	cons, err := s.js.CreateOrUpdateConsumer(ctx, events.MatchStream(s.cfg.Cell), jetstream.ConsumerConfig{
		Durable:       "cell-results",
		FilterSubject: events.MatchResultSubject(s.cfg.Cell),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 256,
	})
	if err != nil {
		return fmt.Errorf("match results consumer: %w", err)
	}
	hctx := context.WithoutCancel(ctx)
	var lastErr atomic.Value // error: the consumer's last reported error
	onErr := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { lastErr.Store(err) })
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var r events.MatchResult
		if err := json.Unmarshal(msg.Data(), &r); err != nil {
			s.log.Warn("bad match result", "err", err)
			_ = msg.Term()
			return
		}
		ectx, cancel := context.WithTimeout(hctx, 10*time.Second)
		defer cancel()
		if err := s.End(ectx, r); err != nil {
			if errors.Is(err, ErrUnknownSession) {
				// A short match's server can publish its result before
				// Start committed the session's row: retry a few times,
				// then drop it (a forged or stray result must not loop).
				if md, merr := msg.Metadata(); merr == nil && md.NumDelivered >= unknownResultDeliveries {
					s.log.Warn("result for an unknown session dropped", "session", r.SessionID, "deliveries", md.NumDelivered)
					_ = msg.Term()
					return
				}
			}
			s.log.Warn("ending session failed; will retry", "session", r.SessionID, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	}, onErr)
	if err != nil {
		return fmt.Errorf("consume match results: %w", err)
	}
	select {
	case <-ctx.Done():
		cc.Stop()
		<-cc.Closed()
		return nil
	case <-cc.Closed():
		// The library stops consuming on a terminal error (consumer or
		// stream deleted): nothing would end sessions any more.
		err, _ := lastErr.Load().(error)
		if err == nil {
			err = errors.New("consumer stopped")
		}
		return fmt.Errorf("match results consumer: %w", err)
	}
}

// Close stops a running Run and waits for it. Safe to call twice.
func (s *Store) Close() error {
	s.life.Close()
	return nil
}
