package payment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Config of the payment webhooks.
type Config struct {
	// StripeWebhookSecret is the endpoint's signing secret (whsec_…).
	// Empty leaves the Stripe route unmounted.
	StripeWebhookSecret string
	// Tolerance of the signed timestamp (5m).
	Tolerance time.Duration
	// Currencies that may be credited (["gold"]).
	Currencies []string
	// MaxBody of a webhook (64 KiB).
	MaxBody int64
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Deps of the payment package.
type Deps struct {
	DB      *pgxpool.Pool
	Log     *slog.Logger
	Metrics prometheus.Registerer
	// Gateway overrides the Stripe gateway built from Config (tests, other providers).
	Gateway Gateway
}

// Payments serves the webhooks.
type Payments struct {
	cfg     Config
	db      *pgxpool.Pool
	gw      Gateway
	log     *slog.Logger
	credits *prometheus.CounterVec
}

// New validates cfg; no I/O.
func New(cfg Config, deps Deps) (*Payments, error) {
	if deps.DB == nil {
		return nil, errors.New("payment: Deps.DB required")
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 5 * time.Minute
	}
	if len(cfg.Currencies) == 0 {
		cfg.Currencies = []string{"gold"}
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	p := &Payments{cfg: cfg, db: deps.DB, gw: deps.Gateway, log: deps.Log.With("component", "payment")}
	if p.gw == nil && cfg.StripeWebhookSecret != "" {
		p.gw = Stripe{Secret: cfg.StripeWebhookSecret, Tolerance: cfg.Tolerance}
	}
	p.credits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cellgrid_payment_webhooks_total", Help: "Payment webhooks by outcome.",
	}, []string{"outcome"})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(p.credits); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				p.credits = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return p, nil
}

// Register mounts POST /payments/{gateway}/webhook (e.g. /payments/stripe/webhook).
// It is not behind requireAuth: the provider signs the request instead.
func (p *Payments) Register(mux httpapi.Mux, _ func(http.Handler) http.Handler) {
	if p.gw == nil {
		return
	}
	mux.Handle("POST /payments/"+p.gw.Name()+"/webhook", httpapi.Handle(p.handleWebhook))
}

func (p *Payments) handleWebhook(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxBody))
	if err != nil {
		return &httpapi.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: "webhook too large"}
	}
	ev, err := p.gw.Verify(r.Header, body, p.cfg.Now())
	switch {
	case errors.Is(err, ErrBadSignature):
		p.credits.WithLabelValues("bad_signature").Inc()
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "bad_signature", Message: "signature verification failed", Err: err}
	case err != nil:
		p.credits.WithLabelValues("bad_event").Inc()
		return &httpapi.Error{Status: http.StatusUnprocessableEntity, Code: "bad_event", Message: err.Error(), Err: err}
	}
	switch ev.Payment {
	case PaymentNone:
		p.credits.WithLabelValues("ignored").Inc()
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "applied": false})
		return nil
	case PaymentPending:
		// Nothing to do until async_payment_succeeded or _failed arrives.
		p.credits.WithLabelValues("pending").Inc()
		p.log.Info("checkout completed, payment pending", "event", ev.ID)
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "applied": false, "payment": ev.Payment.String()})
		return nil
	case PaymentFailed:
		if err := p.RecordFailed(r.Context(), ev); err != nil {
			p.credits.WithLabelValues("error").Inc()
			return err
		}
		p.credits.WithLabelValues("payment_failed").Inc()
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "applied": false, "payment": ev.Payment.String()})
		return nil
	}
	applied, err := p.Apply(r.Context(), ev)
	if err != nil {
		p.credits.WithLabelValues("error").Inc()
		return err
	}
	if applied {
		p.credits.WithLabelValues("credited").Inc()
	} else {
		p.credits.WithLabelValues("duplicate").Inc()
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "applied": applied})
	return nil
}

// Consumers in applied_events: every applied webhook event by id, every
// credited checkout session by id, every failed checkout session by id.
func (p *Payments) consumers() (event, checkout, failed string) {
	n := p.gw.Name()
	return n + "-webhook", n + "-checkout", n + "-payment-failed"
}

// RecordFailed records that a checkout's delayed payment failed
// (applied_events, consumer "<gateway>-payment-failed", keyed by the
// checkout session id): nothing is credited, and support can see it.
func (p *Payments) RecordFailed(ctx context.Context, ev Event) error {
	_, _, failed := p.consumers()
	err := db.RunTx(ctx, p.db, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO applied_events (consumer, event_id) VALUES ($1, $2)
			ON CONFLICT (consumer, event_id) DO NOTHING`, failed, ev.TopUp.Reference)
		return err
	})
	if err != nil {
		return fmt.Errorf("payment failed %s: %w", ev.ID, err)
	}
	p.log.Warn("checkout payment failed, nothing credited", "event", ev.ID, "checkout", ev.TopUp.Reference, "player", ev.TopUp.PlayerID)
	return nil
}

// Apply credits a paid ev.TopUp exactly once per checkout session, whichever
// event reports the payment (checkout.session.completed when paid at once,
// checkout.session.async_payment_succeeded for delayed methods); a replayed
// event is also recognised by its own id. False when already applied.
func (p *Payments) Apply(ctx context.Context, ev Event) (bool, error) {
	if ev.Payment != PaymentPaid || ev.TopUp == nil {
		return false, fmt.Errorf("top-up %s: %w: payment is %s", ev.ID, ErrBadEvent, ev.Payment)
	}
	t := ev.TopUp
	known := false
	for _, c := range p.cfg.Currencies {
		known = known || c == t.Currency
	}
	if !known {
		return false, &httpapi.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_currency", Message: "unknown currency " + t.Currency}
	}
	consumer, checkout, _ := p.consumers()
	applied := false
	err := db.RunTx(ctx, p.db, func(ctx context.Context, tx pgx.Tx) error {
		applied = false
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM players WHERE id = $1)`, t.PlayerID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return &httpapi.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_player", Message: "no such player"}
		}
		var id string
		err := tx.QueryRow(ctx, `INSERT INTO applied_events (consumer, event_id) VALUES ($1, $2)
			ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`, consumer, ev.ID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO applied_events (consumer, event_id) VALUES ($1, $2)
			ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id`, checkout, t.Reference).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another event already credited this checkout
		}
		if err != nil {
			return err
		}
		applied, err = store.Credit(ctx, tx, store.Entry{
			PlayerID: t.PlayerID, Currency: t.Currency, Amount: t.Amount, Kind: store.KindTopUp,
			IdempotencyKey: p.gw.Name() + ":checkout:" + t.Reference, Reference: t.Reference,
		})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("top-up %s: %w", ev.ID, err)
	}
	return applied, nil
}
