package store

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// FuzzPurchaseRequest feeds arbitrary bodies to POST /store/purchase's
// decoder and checks. A refusal is always a 4xx *httpapi.Error; an accepted
// request carries only what the database can take (no NUL in any text,
// bounded lengths) and values in range. Seeds:
// testdata/fuzz/FuzzPurchaseRequest and the f.Add calls.
func FuzzPurchaseRequest(f *testing.F) {
	for _, s := range []string{
		`{"item_template_id":"sword","quantity":1,"idempotency_key":"k-12345678"}`,
		`{"item_template_id":"sword","quantity":1,"idempotency_key":"k-12345678","currency":"gold"}`,
		`{"item_template_id":"sw\u0000ord","quantity":1,"idempotency_key":"k-12345678"}`,
		`{"item_template_id":"sword","quantity":1,"idempotency_key":"k-1234\u00005678"}`,
		`{"item_template_id":"sword","quantity":-1,"idempotency_key":"k-12345678"}`,
		`{"item_template_id":"sword","quantity":9223372036854775807,"idempotency_key":"k-12345678"}`,
		`{"item_template_id":"sword","quantity":1,"idempotency_key":"k-12345678","currency":"doubloons"}`,
	} {
		f.Add([]byte(s))
	}
	cfg := Config{}
	if err := cfg.setDefaults(); err != nil {
		f.Fatal(err)
	}
	s := &Store{cfg: cfg}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/store/purchase", bytes.NewReader(body))
		var req PurchaseRequest
		err := httpapi.DecodeJSON(httptest.NewRecorder(), r, &req, 4<<10)
		if err == nil {
			err = s.checkPurchase(req)
		}
		if err != nil {
			var he *httpapi.Error
			if !errors.As(err, &he) || he.Status < 400 || he.Status >= 500 {
				t.Fatalf("refusal is not a 4xx API error: %#v", err)
			}
			return
		}
		for _, text := range []string{req.ItemTemplateID, req.IdempotencyKey, req.Currency} {
			if strings.ContainsRune(text, 0) || len(text) > 128 {
				t.Fatalf("accepted text the database refuses: %q", text)
			}
		}
		if req.ItemTemplateID == "" || req.Quantity < 1 || req.Quantity > cfg.MaxQuantity ||
			(req.Currency != "" && !s.HasCurrency(req.Currency)) {
			t.Fatalf("accepted %+v", req)
		}
	})
}
