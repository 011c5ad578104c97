package store

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Register mounts the store routes. Every route requires an access token.
//
//	GET  /store/items
//	POST /store/purchase
//	GET  /wallet
//	GET  /inventory/{playerId}          ("me" is the caller)
//	POST /inventory/{itemId}/equip|unequip|consume
func (s *Store) Register(mux httpapi.Mux, requireAuth func(http.Handler) http.Handler) {
	mux.Handle("GET /store/items", requireAuth(httpapi.Handle(s.handleItems)))
	mux.Handle("POST /store/purchase", requireAuth(httpapi.Handle(s.handlePurchase)))
	mux.Handle("GET /wallet", requireAuth(httpapi.Handle(s.handleWallet)))
	mux.Handle("GET /inventory/{playerId}", requireAuth(httpapi.Handle(s.handleInventory)))
	for _, a := range []string{ActionEquip, ActionUnequip, ActionConsume} {
		mux.Handle("POST /inventory/{itemId}/"+a, requireAuth(httpapi.Handle(s.itemActionHandler(a))))
	}
}

// PlayerParam resolves a {playerId} path value ("me" = caller).
func PlayerParam(r *http.Request, name string, caller uuid.UUID) (uuid.UUID, error) {
	v := r.PathValue(name)
	if v == "me" {
		return caller, nil
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, httpapi.BadRequest("invalid_player_id", "player id must be a UUID or \"me\"")
	}
	return id, nil
}

// handleItems answers the catalog with its version; the ETag is the
// version, so a client that cached it sends If-None-Match and gets 304.
func (s *Store) handleItems(w http.ResponseWriter, r *http.Request) error {
	v, err := s.CatalogVersion(r.Context())
	if err != nil {
		return err
	}
	etag := fmt.Sprintf(`"catalog-%d"`, v)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	items, err := s.Catalog(r.Context())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "version": v})
	return nil
}

func (s *Store) handlePurchase(w http.ResponseWriter, r *http.Request) error {
	player, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	var req PurchaseRequest
	if err := httpapi.DecodeJSON(w, r, &req, 4<<10); err != nil {
		return err
	}
	if err := s.checkPurchase(req); err != nil {
		return err
	}
	res, err := s.Purchase(r.Context(), player, req)
	if err != nil {
		return wireErrors.Wire(err)
	}
	status := http.StatusCreated
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		status = http.StatusOK
	}
	httpapi.WriteJSON(w, status, res)
	return nil
}

// checkPurchase refuses a purchase request before it reaches the database.
// Text that goes into a query has no NUL byte (PostgreSQL refuses it, which
// would be a 500) and a bounded length.
func (s *Store) checkPurchase(req PurchaseRequest) error {
	switch {
	case req.ItemTemplateID == "" || len(req.ItemTemplateID) > 128 || strings.ContainsRune(req.ItemTemplateID, 0):
		return httpapi.BadRequest("invalid_request", "item_template_id must be 1..128 characters")
	case req.Quantity < 1 || req.Quantity > s.cfg.MaxQuantity:
		return httpapi.BadRequest("invalid_quantity", "quantity out of range")
	case len(req.IdempotencyKey) < 8 || len(req.IdempotencyKey) > 128 || strings.ContainsRune(req.IdempotencyKey, 0):
		return httpapi.BadRequest("invalid_idempotency_key", "idempotency_key must be 8..128 characters")
	case req.Currency != "" && !s.HasCurrency(req.Currency):
		return httpapi.BadRequest("unknown_currency", "unknown currency")
	}
	return nil
}

func (s *Store) handleWallet(w http.ResponseWriter, r *http.Request) error {
	player, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	b, err := s.Balances(r.Context(), player)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"player_id": player, "balances": b})
	return nil
}

func (s *Store) handleInventory(w http.ResponseWriter, r *http.Request) error {
	caller, err := accesstoken.Caller(r)
	if err != nil {
		return err
	}
	owner, err := PlayerParam(r, "playerId", caller)
	if err != nil {
		return err
	}
	items, err := s.Inventory(r.Context(), caller, owner)
	if err != nil {
		return wireErrors.Wire(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"player_id": owner, "items": items})
	return nil
}

func (s *Store) itemActionHandler(action string) httpapi.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		caller, err := accesstoken.Caller(r)
		if err != nil {
			return err
		}
		itemID, err := uuid.Parse(r.PathValue("itemId"))
		if err != nil {
			return httpapi.BadRequest("invalid_item_id", "item id must be a UUID")
		}
		var body struct {
			Quantity int64 `json:"quantity"`
		}
		if action == ActionConsume && r.ContentLength != 0 {
			if err := httpapi.DecodeJSON(w, r, &body, 1<<10); err != nil {
				return err
			}
		}
		it, err := s.ItemAction(r.Context(), caller, itemID, action, body.Quantity)
		if err != nil {
			return wireErrors.Wire(err)
		}
		httpapi.WriteJSON(w, http.StatusOK, it)
		return nil
	}
}

// wireErrors maps the package's sentinel errors to the wire, once, at
// the edge.
var wireErrors = httpapi.ErrorTable{
	{Err: ErrInsufficientFunds, Status: http.StatusConflict, Code: "insufficient_funds", Message: "insufficient funds"},
	{Err: ErrIdempotencyMismatch, Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Message: "idempotency key was used for a different request"},
	{Err: ErrUnknownItem, Status: http.StatusNotFound, Code: "unknown_item", Message: "no such item for sale in that currency"},
	{Err: ErrMaxStack, Status: http.StatusConflict, Code: "max_stack_exceeded", Message: "purchase would exceed the item's max stack"},
	{Err: ErrNotFound, Status: http.StatusNotFound, Code: "not_found", Message: "not found"},
	{Err: ErrNotAllowed, Status: http.StatusConflict, Code: "action_not_allowed", Message: "action not allowed for this item"},
}
