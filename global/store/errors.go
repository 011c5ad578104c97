package store

import "errors"

// Sentinel errors; the HTTP edge maps them to status codes (api.go).
var (
	// ErrInsufficientFunds: the wallet holds less than the price.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrIdempotencyMismatch: the idempotency key was used for a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrUnknownItem: no such item template, or no price in that currency.
	ErrUnknownItem = errors.New("unknown item or currency")
	// ErrMaxStack: the purchase would exceed the template's max stack.
	ErrMaxStack = errors.New("max stack exceeded")
	// ErrNotFound: no such inventory item (or not the caller's).
	ErrNotFound = errors.New("not found")
	// ErrNotAllowed: the item cannot be equipped / consumed.
	ErrNotAllowed = errors.New("action not allowed for this item")
	// ErrUnknownCurrency: the currency is not configured.
	ErrUnknownCurrency = errors.New("unknown currency")
	// ErrVersionConflict: the catalog changed since the version an edit
	// was based on.
	ErrVersionConflict = errors.New("catalog version conflict")
	// ErrInvalidItem: an edited item template is not valid (see EditItem).
	ErrInvalidItem = errors.New("invalid item template")
)
