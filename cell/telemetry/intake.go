package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/cellgrid/cellgrid/internal/supervise"
	"github.com/cellgrid/cellgrid/proto/events"
)

// Config configures the cell-side intake.
type Config struct {
	// Cell id (required): names the subject and stream.
	Cell string
	// MaxEvents per request (100) and MaxBody bytes (256 KiB, → 413).
	MaxEvents int
	MaxBody   int64
	// EventTypes allowed; empty allows any name matching [a-z][a-z0-9_.]{0,63}.
	EventTypes []string
	// MaxPayloadBytes (4 KiB, encoded) and MaxPayloadDepth (8 levels of
	// objects/arrays) bound one event's payload; beyond them → 400.
	MaxPayloadBytes int
	MaxPayloadDepth int
	// MaxFutureSkew (1m) and MaxAge (24h) bound event timestamps.
	MaxFutureSkew, MaxAge time.Duration
	// EventsPerSecond (50) and Burst (200) limit events per player, per
	// intake instance (in memory). Over the limit → 429 with Retry-After.
	EventsPerSecond float64
	Burst           int
	// MaxTrackedPlayers bounds the limiter table (100000); past it the table
	// is reset (a burst allowance for everyone, never a lockout).
	MaxTrackedPlayers int
	// StreamReplicas of the cell's telemetry stream (1), MaxAge 7 days.
	StreamReplicas int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// DefaultConfig returns every default in one place (Cell has none).
func DefaultConfig() Config {
	return Config{
		MaxEvents: 100, MaxBody: 256 << 10, MaxPayloadBytes: 4 << 10, MaxPayloadDepth: 8,
		MaxFutureSkew: time.Minute, MaxAge: 24 * time.Hour,
		EventsPerSecond: 50, Burst: 200, MaxTrackedPlayers: 100000, StreamReplicas: 1, Now: time.Now,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Cell == "" {
		return c, errors.New("telemetry intake: Cell required")
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = d.MaxEvents
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.MaxPayloadBytes <= 0 {
		c.MaxPayloadBytes = d.MaxPayloadBytes
	}
	if c.MaxPayloadDepth <= 0 {
		c.MaxPayloadDepth = d.MaxPayloadDepth
	}
	if c.MaxFutureSkew <= 0 {
		c.MaxFutureSkew = d.MaxFutureSkew
	}
	if c.MaxAge <= 0 {
		c.MaxAge = d.MaxAge
	}
	if c.EventsPerSecond <= 0 {
		c.EventsPerSecond = d.EventsPerSecond
	}
	if c.Burst <= 0 {
		c.Burst = d.Burst
	}
	if c.Burst < c.MaxEvents {
		c.Burst = c.MaxEvents
	}
	if c.MaxTrackedPlayers <= 0 {
		c.MaxTrackedPlayers = d.MaxTrackedPlayers
	}
	if c.StreamReplicas <= 0 {
		c.StreamReplicas = d.StreamReplicas
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c, nil
}

// Deps are the intake's collaborators.
type Deps struct {
	// JS is a JetStream context on a connection to the cell's cluster.
	JS      jetstream.JetStream
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Intake is the cell's POST /game/telemetry handler. Mount it behind
// the access-token middleware (it reads the player from
// accesstoken.FromContext), e.g. with Register.
type Intake struct {
	cfg     Config
	js      jetstream.JetStream
	log     *slog.Logger
	allowed map[string]bool
	events  *prometheus.CounterVec
	life    supervise.Lifecycle

	mu sync.Mutex
	// mu guards limiters.
	limiters map[string]*rate.Limiter
}

// New validates cfg; no I/O (Run, or EnsureStream, creates the stream).
func New(cfg Config, deps Deps) (*Intake, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("telemetry intake: Deps.JS required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	h := &Intake{cfg: cfg, js: deps.JS, log: deps.Log.With("component", "telemetry-intake"), // the cell's logger names the cell
		limiters: map[string]*rate.Limiter{}}
	if len(cfg.EventTypes) > 0 {
		h.allowed = map[string]bool{}
		for _, t := range cfg.EventTypes {
			h.allowed[t] = true
		}
	}
	h.events = httpapi.RegisterCollector(deps.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellgrid_telemetry_intake_events_total", Help: "Telemetry events at the cell intake by outcome.",
	}, []string{"outcome"}))
	return h, nil
}

// EnsureStream creates or updates the cell's telemetry stream, placed in
// the cell's cluster.
func (h *Intake) EnsureStream(ctx context.Context) error {
	_, err := h.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       events.TelemetryStream(h.cfg.Cell),
		Subjects:   []string{events.TelemetrySubjects(h.cfg.Cell)},
		Storage:    jetstream.FileStorage,
		Replicas:   h.cfg.StreamReplicas,
		Placement:  &jetstream.Placement{Cluster: h.cfg.Cell},
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("telemetry intake: stream: %w", err)
	}
	return nil
}

// Run ensures the cell's telemetry stream, then serves (through the
// handler) until ctx ends or Close is called.
func (h *Intake) Run(ctx context.Context) error {
	ctx, done := h.life.Start(ctx)
	defer done()
	if err := h.EnsureStream(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	<-ctx.Done()
	return nil
}

// Close stops a running Run and waits for it. The handler keeps
// answering (the HTTP server owns requests). Safe to call twice.
func (h *Intake) Close() error {
	h.life.Close()
	return nil
}

// Register mounts POST /game/telemetry behind requireAuth.
func (h *Intake) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("POST /game/telemetry", requireAuth(h))
}

// IntakeRequest is the body of POST /game/telemetry.
type IntakeRequest struct {
	Events []IntakeEvent `json:"events"`
}

// IntakeEvent is one event as a client sends it.
type IntakeEvent struct {
	EventType string         `json:"event_type"`
	SessionID string         `json:"session_id,omitempty"`
	Timestamp time.Time      `json:"timestamp"`
	Payload   map[string]any `json:"payload,omitempty"`
}

var typeRe = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}$`)

func (h *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpapi.Handle(h.serve)(w, r)
}

func (h *Intake) serve(w http.ResponseWriter, r *http.Request) error {
	c, ok := accesstoken.FromContext(r.Context())
	if !ok || c.PlayerID == "" {
		return httpapi.Unauthorized("missing access token")
	}
	player, err := uuid.Parse(c.PlayerID)
	if err != nil {
		return httpapi.Unauthorized("access token subject is not a player id")
	}
	now := h.cfg.Now()
	batch, err := h.parse(w, r, player, now)
	if err != nil {
		return err
	}
	n := len(batch.Events)
	if !h.limiter(player.String()).AllowN(now, n) {
		h.events.WithLabelValues("rate_limited").Add(float64(n))
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many telemetry events", RetryAfter: time.Duration(float64(n) / h.cfg.EventsPerSecond * float64(time.Second))}
	}
	data, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(events.TelemetrySubject(h.cfg.Cell))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, batch.Events[0].EventID)
	if _, err := h.js.PublishMsg(r.Context(), msg); err != nil {
		h.events.WithLabelValues("unavailable").Add(float64(n))
		h.log.Warn("telemetry publish failed", "err", err)
		return httpapi.Unavailable("telemetry store unavailable", time.Second)
	}
	h.events.WithLabelValues("accepted").Add(float64(n))
	ids := make([]string, n)
	for i, e := range batch.Events {
		ids[i] = e.EventID
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"accepted": n, "event_ids": ids})
	return nil
}

// parse decodes and validates a request body into the batch to publish.
// Every error is an *httpapi.Error with a 4xx status.
func (h *Intake) parse(w http.ResponseWriter, r *http.Request, player uuid.UUID, now time.Time) (events.TelemetryBatch, error) {
	var req IntakeRequest
	if err := decodeUTF8JSON(w, r, &req, h.cfg.MaxBody); err != nil {
		h.count("invalid", 1)
		return events.TelemetryBatch{}, err
	}
	n := len(req.Events)
	if n == 0 || n > h.cfg.MaxEvents {
		h.count("invalid", n)
		return events.TelemetryBatch{}, httpapi.BadRequest("invalid_events", fmt.Sprintf("send 1..%d events", h.cfg.MaxEvents))
	}
	batch := events.TelemetryBatch{Events: make([]events.TelemetryEvent, 0, n)}
	for i, e := range req.Events {
		if err := h.validate(e, now); err != nil {
			h.count("invalid", n)
			return events.TelemetryBatch{}, httpapi.BadRequest("invalid_event", fmt.Sprintf("event %d: %v", i, err))
		}
		batch.Events = append(batch.Events, events.TelemetryEvent{
			EventID: uuid.NewString(), PlayerID: player.String(), EventType: e.EventType,
			SessionID: e.SessionID, Timestamp: e.Timestamp.UTC(), Payload: e.Payload, Cell: h.cfg.Cell,
		})
	}
	return batch, nil
}

func (h *Intake) count(outcome string, n int) {
	if h.events != nil {
		h.events.WithLabelValues(outcome).Add(float64(n))
	}
}

func (h *Intake) validate(e IntakeEvent, now time.Time) error {
	switch {
	case h.allowed != nil && !h.allowed[e.EventType]:
		return fmt.Errorf("event_type %q not allowed", e.EventType)
	case h.allowed == nil && !typeRe.MatchString(e.EventType):
		return fmt.Errorf("event_type %q invalid", e.EventType)
	case e.Timestamp.IsZero():
		return errors.New("timestamp required")
	case e.Timestamp.After(now.Add(h.cfg.MaxFutureSkew)):
		return errors.New("timestamp in the future")
	case e.Timestamp.Before(now.Add(-h.cfg.MaxAge)):
		return errors.New("timestamp too old")
	}
	if e.SessionID != "" {
		if _, err := uuid.Parse(e.SessionID); err != nil {
			return errors.New("session_id must be a UUID")
		}
	}
	return checkPayload(e.Payload, h.cfg.MaxPayloadDepth, h.cfg.MaxPayloadBytes)
}

func (h *Intake) limiter(player string) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[player]
	if !ok {
		if len(h.limiters) >= h.cfg.MaxTrackedPlayers {
			h.limiters = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(h.cfg.EventsPerSecond), h.cfg.Burst)
		h.limiters[player] = l
	}
	return l
}
