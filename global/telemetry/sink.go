package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/streams"
	"github.com/cellgrid/cellgrid/proto/events"
)

// Config of the global telemetry layer.
type Config struct {
	// Cells whose telemetry streams are sourced from the start; AddCell
	// adds more while running (the sources the stream has are never
	// dropped).
	Cells []string
	// Stream ("TELEMETRY_GLOBAL") in Cluster ("global") with Replicas (1).
	Stream   string
	Cluster  string
	Replicas int
	// Durable sink consumer ("telemetry-sink").
	Durable string
	// BatchMessages (64 batches of ≤100 events) fetched per transaction;
	// MaxWait (200ms) bounds how long a partial batch waits.
	BatchMessages int
	MaxWait       time.Duration
	// AckWait (30s) before JetStream redelivers an unacked batch.
	AckWait time.Duration
	// ScoreEventType ("score") and MaxScoreEventsPerMinute (120; 0 disables)
	// drive RuleScoreRate.
	ScoreEventType          string
	MaxScoreEventsPerMinute int64
	// AdminPlayerIDs may call GET /admin/flags.
	AdminPlayerIDs []string
}

func (c *Config) setDefaults() error {
	if c.Stream == "" {
		c.Stream = "TELEMETRY_GLOBAL"
	}
	if c.Cluster == "" {
		c.Cluster = "global"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Durable == "" {
		c.Durable = "telemetry-sink"
	}
	if c.BatchMessages <= 0 {
		c.BatchMessages = 64
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 200 * time.Millisecond
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.ScoreEventType == "" {
		c.ScoreEventType = "score"
	}
	if c.MaxScoreEventsPerMinute == 0 {
		c.MaxScoreEventsPerMinute = 120
	}
	return nil
}

// Deps of the global telemetry layer.
type Deps struct {
	DB *pgxpool.Pool
	// JS is a JetStream context on a connection to the global cluster.
	JS      jetstream.JetStream
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Telemetry is the global sink, rules and admin API.
type Telemetry struct {
	cfg    Config
	db     *pgxpool.Pool
	js     jetstream.JetStream
	log    *slog.Logger
	admins map[uuid.UUID]bool
	m      struct {
		events  *prometheus.CounterVec
		batches prometheus.Histogram
	}

	mu    sync.Mutex
	cells []string // guarded by mu: Config.Cells and every AddCell
}

// New validates cfg; no I/O.
func New(cfg Config, deps Deps) (*Telemetry, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.DB == nil || deps.JS == nil {
		return nil, errors.New("telemetry: Deps.DB and JS required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	t := &Telemetry{cfg: cfg, db: deps.DB, js: deps.JS, log: deps.Log.With("component", "telemetry-sink"), admins: map[uuid.UUID]bool{}, cells: slices.Clone(cfg.Cells)}
	for _, a := range cfg.AdminPlayerIDs {
		id, err := uuid.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("telemetry: admin id %q: %w", a, err)
		}
		t.admins[id] = true
	}
	t.m.events = httpapi.RegisterCollector(deps.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellgrid_telemetry_sink_events_total", Help: "Telemetry events at the global sink (written, duplicate, invalid).",
	}, []string{"outcome"}))
	t.m.batches = httpapi.RegisterCollector(deps.Metrics, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "cellgrid_telemetry_sink_batch_seconds", Help: "Time to write one sink batch.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}))
	return t, nil
}

// stream describes the global stream sourcing every cell's telemetry.
func (t *Telemetry) stream() streams.SourcedStream {
	st := streams.SourcedStream{
		Name:          t.cfg.Stream,
		Description:   "telemetry of every cell, sourced into the global cluster",
		Cluster:       t.cfg.Cluster,
		Replicas:      t.cfg.Replicas,
		MaxAge:        3 * 24 * time.Hour,
		Durable:       t.cfg.Durable,
		AckWait:       t.cfg.AckWait,
		MaxAckPending: t.cfg.BatchMessages * 4,
	}
	t.mu.Lock()
	for _, cell := range t.cells {
		st.Sources = append(st.Sources, &jetstream.StreamSource{Name: events.TelemetryStream(cell)})
	}
	t.mu.Unlock()
	return st
}

// AddCell makes the global stream source cell's telemetry too, while Run
// sinks: its events reach game_event_log like any other cell's.
// Idempotent, safe for concurrent use; no source is ever removed.
func (t *Telemetry) AddCell(ctx context.Context, cell string) error {
	t.mu.Lock()
	if !slices.Contains(t.cells, cell) {
		t.cells = append(t.cells, cell)
	}
	t.mu.Unlock()
	if err := t.stream().AddSources(ctx, t.js, &jetstream.StreamSource{Name: events.TelemetryStream(cell)}); err != nil {
		return fmt.Errorf("telemetry: add cell %s: %w", cell, err)
	}
	return nil
}

// EnsureStream creates or updates the global stream sourcing every cell's
// telemetry stream.
func (t *Telemetry) EnsureStream(ctx context.Context) error {
	if err := t.stream().EnsureStream(ctx, t.js); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

// Run is the batch sink: it returns nil when ctx is cancelled, after naking
// what it fetched but did not commit (so the next sink gets it at once).
func (t *Telemetry) Run(ctx context.Context) error {
	cons, err := t.stream().Consumer(ctx, t.js)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("telemetry: %w", err)
	}
	for ctx.Err() == nil {
		if err := t.sinkOnce(ctx, cons); err != nil && ctx.Err() == nil {
			if gone(ctx, cons, err) {
				// Nothing would be sunk any more: fail, so the process
				// turns unready and exits (and is restarted).
				return fmt.Errorf("telemetry: consumer: %w", err)
			}
			t.log.Warn("telemetry sink batch failed, will retry", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// gone reports whether err means the sink's consumer no longer exists
// (deleted, or its stream deleted), as opposed to a passing failure.
func gone(ctx context.Context, cons jetstream.Consumer, err error) bool {
	if errors.Is(err, jetstream.ErrConsumerDeleted) {
		return true
	}
	if !errors.Is(err, nats.ErrNoResponders) {
		return false
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, ierr := cons.Info(ictx)
	return errors.Is(ierr, jetstream.ErrConsumerNotFound) || errors.Is(ierr, jetstream.ErrStreamNotFound)
}

// quietFetch reports whether err only says the fetch's own wait ran out
// (under load even the pull request may take longer than MaxWait) while the
// sink itself keeps running.
func quietFetch(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded)
}

func (t *Telemetry) sinkOnce(ctx context.Context, cons jetstream.Consumer) error {
	fctx, cancel := context.WithTimeout(ctx, t.cfg.MaxWait)
	defer cancel()
	batch, err := cons.Fetch(t.cfg.BatchMessages, jetstream.FetchContext(fctx))
	if quietFetch(ctx, err) {
		// A fetch that waited its whole MaxWait for nothing: an idle
		// stream, not a failure.
		return nil
	}
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	var msgs, undecodable []jetstream.Msg
	var evs []events.TelemetryEvent
	for msg := range batch.Messages() {
		var b events.TelemetryBatch
		if err := json.Unmarshal(msg.Data(), &b); err != nil {
			undecodable = append(undecodable, msg)
			continue
		}
		msgs = append(msgs, msg)
		evs = append(evs, b.Events...)
	}
	if len(undecodable) > 0 {
		// A message that is not a batch at all: keep its bytes as a dead
		// letter, then terminate it (redelivery cannot make it valid).
		if err := t.deadLetterMessages(ctx, undecodable); err != nil {
			nakAll(ctx, undecodable)
			nakAll(ctx, msgs)
			return err
		}
		for _, m := range undecodable {
			_ = m.Term()
		}
	}
	if len(msgs) == 0 {
		if err := batch.Error(); err != nil && ctx.Err() == nil && !quietFetch(ctx, err) {
			return fmt.Errorf("fetch: %w", err)
		}
		return nil
	}
	start := time.Now()
	written, dead, err := t.write(ctx, evs)
	if err != nil {
		nakAll(ctx, msgs)
		return err
	}
	t.m.batches.Observe(time.Since(start).Seconds())
	t.m.events.WithLabelValues("written").Add(float64(written))
	t.m.events.WithLabelValues("dead_letter").Add(float64(dead))
	t.m.events.WithLabelValues("duplicate").Add(float64(len(evs) - written - dead))
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			t.log.Warn("telemetry: ack", "err", err) // redelivered and deduplicated by id
		}
	}
	return nil
}

// nakAll hands msgs back: at once when the sink is stopping (the next sink
// gets them), after a second otherwise (the database is having trouble).
func nakAll(ctx context.Context, msgs []jetstream.Msg) {
	for _, m := range msgs {
		if ctx.Err() != nil {
			_ = m.Nak()
		} else {
			_ = m.NakWithDelay(time.Second)
		}
	}
}

const insertChunk = 1000

type row struct {
	id, player, session *uuid.UUID
	e                   *events.TelemetryEvent
	payload             string
}

// write stores evs once each and runs the rules. Events that cannot become
// a row (no UUID id, an unencodable payload) and events the database refuses
// (see refused) go to telemetry_dead_letter with the reason; the others
// commit. It returns how many log rows were new and how many events were
// dead-lettered; an error means nothing is settled and the batch must be
// redelivered.
func (t *Telemetry) write(ctx context.Context, evs []events.TelemetryEvent) (written, dead int, err error) {
	rows := make([]row, 0, len(evs))
	var letters []deadLetter
	for i := range evs {
		e := &evs[i]
		id, err := uuid.Parse(e.EventID)
		if err != nil {
			letters = append(letters, newDeadLetter(e, "event_id is not a UUID"))
			continue
		}
		r := row{id: &id, e: e, payload: "null"}
		if p, err := uuid.Parse(e.PlayerID); err == nil {
			r.player = &p
		}
		if s, err := uuid.Parse(e.SessionID); err == nil {
			r.session = &s
		}
		if e.Payload != nil {
			b, err := json.Marshal(e.Payload)
			if err != nil {
				letters = append(letters, newDeadLetter(e, "payload: "+err.Error()))
				continue
			}
			r.payload = string(b)
		}
		rows = append(rows, r)
	}
	written, refusedLetters, err := t.writeIsolating(ctx, rows)
	if err != nil {
		return 0, 0, fmt.Errorf("telemetry write %d events: %w", len(rows), err)
	}
	letters = append(letters, refusedLetters...)
	if err := t.storeDeadLetters(ctx, letters); err != nil {
		return 0, 0, err
	}
	return written, len(letters), nil
}

// writeIsolating commits rows in one transaction; when the database
// refuses the data, it splits the rows in halves and retries each, down to
// single rows, which become dead letters. k bad rows among n cost about
// 2k·log2(n) transactions, and only when something is refused.
func (t *Telemetry) writeIsolating(ctx context.Context, rows []row) (int, []deadLetter, error) {
	if len(rows) == 0 {
		return 0, nil, nil
	}
	written, err := t.writeRows(ctx, rows)
	if err == nil {
		return written, nil, nil
	}
	if !refused(err) {
		return 0, nil, err
	}
	if len(rows) == 1 {
		t.log.Warn("telemetry: event refused by the database, dead-lettered", "event_id", rows[0].e.EventID, "err", err)
		return 0, []deadLetter{newDeadLetter(rows[0].e, err.Error())}, nil
	}
	half := len(rows) / 2
	w1, d1, err := t.writeIsolating(ctx, rows[:half])
	if err != nil {
		return 0, nil, err
	}
	w2, d2, err := t.writeIsolating(ctx, rows[half:])
	if err != nil {
		return 0, nil, err
	}
	return w1 + w2, append(d1, d2...), nil
}

// writeRows stores rows and runs the rules in one transaction. It returns
// how many rows were new.
func (t *Telemetry) writeRows(ctx context.Context, rows []row) (int, error) {
	var written int
	err := db.RunTx(ctx, t.db, func(ctx context.Context, tx pgx.Tx) error {
		written = 0
		for lo := 0; lo < len(rows); lo += insertChunk {
			n, err := insertRows(ctx, tx, rows[lo:min(lo+insertChunk, len(rows))])
			if err != nil {
				return err
			}
			written += n
		}
		return t.scoreRateRule(ctx, tx, rows)
	})
	return written, err
}

func insertRows(ctx context.Context, tx pgx.Tx, rows []row) (int, error) {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO game_event_log (id, player_id, session_id, cell, event_type, occurred_at, payload) VALUES `)
	args := make([]any, 0, len(rows)*7)
	for i, r := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		n := i * 7
		sb.WriteString("($" + strconv.Itoa(n+1) + ",$" + strconv.Itoa(n+2) + ",$" + strconv.Itoa(n+3) + ",$" +
			strconv.Itoa(n+4) + ",$" + strconv.Itoa(n+5) + ",$" + strconv.Itoa(n+6) + ",$" + strconv.Itoa(n+7) + "::JSONB)")
		args = append(args, r.id, r.player, r.session, r.e.Cell, r.e.EventType, r.e.Timestamp, r.payload)
	}
	sb.WriteString(` ON CONFLICT (id) DO NOTHING`)
	tag, err := tx.Exec(ctx, sb.String(), args...)
	if err != nil {
		return 0, fmt.Errorf("insert events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// scoreRateRule flags players with more than MaxScoreEventsPerMinute score
// events in a calendar minute touched by this batch. It counts the log of
// record, so events split over several batches (or cells) still add up.
func (t *Telemetry) scoreRateRule(ctx context.Context, tx pgx.Tx, rows []row) error {
	limit := t.cfg.MaxScoreEventsPerMinute
	if limit <= 0 {
		return nil
	}
	players := map[uuid.UUID]bool{}
	var lo, hi time.Time
	for _, r := range rows {
		if r.e.EventType != t.cfg.ScoreEventType || r.player == nil {
			continue
		}
		players[*r.player] = true
		ts := r.e.Timestamp.UTC().Truncate(time.Minute)
		if lo.IsZero() || ts.Before(lo) {
			lo = ts
		}
		if ts.After(hi) {
			hi = ts
		}
	}
	if len(players) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(players))
	for p := range players {
		ids = append(ids, p)
	}
	q, err := tx.Query(ctx, `
		SELECT player_id, date_trunc('minute', occurred_at AT TIME ZONE 'UTC'), count(*)
		FROM game_event_log
		WHERE event_type = $1 AND player_id = ANY($2::UUID[]) AND occurred_at >= $3 AND occurred_at < $4
		GROUP BY 1, 2 HAVING count(*) > $5`,
		t.cfg.ScoreEventType, ids, lo, hi.Add(time.Minute), limit)
	if err != nil {
		return fmt.Errorf("score rate rule: %w", err)
	}
	var flags []Flag
	for q.Next() {
		var f Flag
		var w time.Time
		if err := q.Scan(&f.PlayerID, &w, &f.Observed); err != nil {
			q.Close()
			return fmt.Errorf("score rate rule: %w", err)
		}
		f.Rule, f.Threshold = RuleScoreRate, limit
		f.WindowStart = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, time.UTC)
		f.Detail = fmt.Sprintf("%d %s events in one minute", f.Observed, t.cfg.ScoreEventType)
		flags = append(flags, f)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return fmt.Errorf("score rate rule: %w", err)
	}
	for _, f := range flags {
		if err := FlagPlayer(ctx, tx, f); err != nil {
			return err
		}
	}
	return nil
}
