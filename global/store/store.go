package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/httpapi"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Store serves the catalog, wallets, purchases and inventories.
type Store struct {
	cfg Config
	db  *pgxpool.Pool
	log *slog.Logger
	m   metrics
}

// New validates cfg and seeds the catalog from cfg.Items (config wins over
// the database: names, flags and prices are updated in place), except for
// items an operator edited (EditItem), which keep the edit. Seeding bumps
// the catalog version.
func New(cfg Config, deps Deps) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("store: Deps.DB required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	s := &Store{cfg: cfg, db: deps.DB, log: deps.Log.With("component", "store"), m: newMetrics(deps.Metrics)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.seed(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) seed(ctx context.Context) error {
	if len(s.cfg.Items) == 0 {
		return nil
	}
	err := db.RunTx(ctx, s.db, func(ctx context.Context, tx pgx.Tx) error {
		for _, it := range s.cfg.Items {
			if _, err := tx.Exec(ctx, `
				INSERT INTO item_templates (id, name, description, max_stack, tradable, consumable, equippable)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
					max_stack = excluded.max_stack, tradable = excluded.tradable,
					consumable = excluded.consumable, equippable = excluded.equippable
				WHERE item_templates.ops_edited = false`,
				it.ID, it.Name, it.Description, it.MaxStack, it.Tradable, it.Consumable, it.Equippable); err != nil {
				return fmt.Errorf("item %s: %w", it.ID, err)
			}
			var edited bool
			if err := tx.QueryRow(ctx, `SELECT ops_edited FROM item_templates WHERE id = $1`, it.ID).Scan(&edited); err != nil {
				return fmt.Errorf("item %s: %w", it.ID, err)
			}
			if edited {
				continue // an operator's edit outlives restarts
			}
			for cur, amt := range it.Prices {
				if _, err := tx.Exec(ctx, `
					INSERT INTO item_prices (item_template_id, currency, amount) VALUES ($1, $2, $3)
					ON CONFLICT (item_template_id, currency) DO UPDATE SET amount = excluded.amount`,
					it.ID, cur, amt); err != nil {
					return fmt.Errorf("item %s price %s: %w", it.ID, cur, err)
				}
			}
		}
		_, err := bumpCatalogVersion(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: seed catalog: %w", err)
	}
	return nil
}

// Catalog lists the item templates of record with their prices.
func (s *Store) Catalog(ctx context.Context) ([]ItemTemplate, error) {
	rows, err := s.db.Query(ctx, `
		SELECT t.id, t.name, t.description, t.max_stack, t.tradable, t.consumable, t.equippable,
			coalesce(p.currency, ''), coalesce(p.amount, 0)
		FROM item_templates t LEFT JOIN item_prices p ON p.item_template_id = t.id
		ORDER BY t.id, p.currency`)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	defer rows.Close()
	out := []ItemTemplate{}
	for rows.Next() {
		var it ItemTemplate
		var cur string
		var amt int64
		if err := rows.Scan(&it.ID, &it.Name, &it.Description, &it.MaxStack, &it.Tradable, &it.Consumable, &it.Equippable, &cur, &amt); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != it.ID {
			it.Prices = map[string]int64{}
			out = append(out, it)
		}
		if cur != "" {
			out[len(out)-1].Prices[cur] = amt
		}
	}
	return out, rows.Err()
}

// Currencies returns the configured currencies.
func (s *Store) Currencies() []string { return append([]string(nil), s.cfg.Currencies...) }

// HasCurrency reports whether c is configured.
func (s *Store) HasCurrency(c string) bool {
	for _, k := range s.cfg.Currencies {
		if k == c {
			return true
		}
	}
	return false
}

type metrics struct {
	purchases *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		purchases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellgrid_store_purchases_total", Help: "Purchases by result.",
		}, []string{"result"}),
	}
	m.purchases = httpapi.RegisterCollector(reg, m.purchases)
	return m
}
