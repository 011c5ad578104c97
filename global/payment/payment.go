package payment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/cellgrid/cellgrid/global/store"
	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
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
	if ev.TopUp == nil {
		p.credits.WithLabelValues("ignored").Inc()
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"received": true, "applied": false})
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

// Apply credits ev.TopUp once per event id; false when already applied.
func (p *Payments) Apply(ctx context.Context, ev Event) (bool, error) {
	t := ev.TopUp
	known := false
	for _, c := range p.cfg.Currencies {
		known = known || c == t.Currency
	}
	if !known {
		return false, &httpapi.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_currency", Message: "unknown currency " + t.Currency}
	}
	consumer := p.gw.Name() + "-webhook"
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
		applied, err = store.Credit(ctx, tx, store.Entry{
			PlayerID: t.PlayerID, Currency: t.Currency, Amount: t.Amount, Kind: store.KindTopUp,
			IdempotencyKey: p.gw.Name() + ":" + ev.ID, Reference: t.Reference,
		})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("top-up %s: %w", ev.ID, err)
	}
	return applied, nil
}
