package store

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ItemTemplate is one catalog entry. Prices are minor units per currency;
// an item without a price in a currency cannot be bought with it.
type ItemTemplate struct {
	ID          string           `json:"id" yaml:"id"`
	Name        string           `json:"name" yaml:"name"`
	Description string           `json:"description,omitempty" yaml:"description"`
	Prices      map[string]int64 `json:"prices" yaml:"prices"`
	MaxStack    int              `json:"max_stack" yaml:"max_stack"` // 0 means 1
	Tradable    bool             `json:"tradable" yaml:"tradable"`
	Consumable  bool             `json:"consumable" yaml:"consumable"`
	Equippable  bool             `json:"equippable" yaml:"equippable"`
}

// Config of the store. Zero values are documented per field; setDefaults
// fills them in one place.
type Config struct {
	// Currencies known to the economy. Default ["gold"]. The first is the
	// default purchase currency.
	Currencies []string
	// Items seeded into item_templates/item_prices at New (INSERT … ON
	// CONFLICT DO UPDATE: config wins over the database).
	Items []ItemTemplate
	// StartingGrant is credited per currency by GrantStarting. Nil means none.
	StartingGrant map[string]int64
	// MaxQuantity bounds one purchase's quantity. Default 100.
	MaxQuantity int64
}

func (c *Config) setDefaults() error {
	if len(c.Currencies) == 0 {
		c.Currencies = []string{"gold"}
	}
	if c.MaxQuantity <= 0 {
		c.MaxQuantity = 100
	}
	known := map[string]bool{}
	for _, cur := range c.Currencies {
		if !currencyRe.MatchString(cur) {
			return fmt.Errorf("store: bad currency %q", cur)
		}
		known[cur] = true
	}
	for cur, amt := range c.StartingGrant {
		if !known[cur] || amt < 0 {
			return fmt.Errorf("store: starting grant %s=%d: unknown currency or negative", cur, amt)
		}
	}
	for i := range c.Items {
		it := &c.Items[i]
		if it.ID == "" || it.Name == "" {
			return errors.New("store: item needs id and name")
		}
		if it.MaxStack <= 0 {
			it.MaxStack = 1
		}
		for cur, p := range it.Prices {
			if !known[cur] || p < 0 {
				return fmt.Errorf("store: item %s price %s=%d: unknown currency or negative", it.ID, cur, p)
			}
		}
	}
	return nil
}

var currencyRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// Deps are the store's collaborators.
type Deps struct {
	DB      *pgxpool.Pool
	Log     *slog.Logger
	Metrics prometheus.Registerer // nil: a private registry
}
