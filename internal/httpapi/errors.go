package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error with a wire code and HTTP status. Domain packages return
// (or wrap) these from handlers; WriteError turns them into the envelope.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // sets Retry-After when > 0
	Err        error         // cause, not shown to clients
	// Details, when set, is written as "details" inside the envelope
	// (e.g. the cell a refused join should go to instead).
	Details any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Common errors.
func BadRequest(code, msg string) *Error { return &Error{Status: 400, Code: code, Message: msg} }
func Unauthorized(msg string) *Error     { return &Error{Status: 401, Code: "unauthorized", Message: msg} }
func Forbidden(msg string) *Error        { return &Error{Status: 403, Code: "forbidden", Message: msg} }
func NotFound(msg string) *Error         { return &Error{Status: 404, Code: "not_found", Message: msg} }
func Conflict(code, msg string) *Error   { return &Error{Status: 409, Code: code, Message: msg} }
func Unavailable(msg string, retry time.Duration) *Error {
	return &Error{Status: 503, Code: "unavailable", Message: msg, RetryAfter: retry}
}

type envelope struct {
	Error envelopeBody `json:"error"`
}

type envelopeBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

// WriteError writes err as the JSON envelope. An *Error anywhere in the chain
// chooses status and code; anything else is a 500 whose cause is not shown.
func WriteError(w http.ResponseWriter, err error) {
	var he *Error
	if !errors.As(err, &he) {
		he = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	if he.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((he.RetryAfter+time.Second-1)/time.Second)))
	}
	WriteJSON(w, he.Status, envelope{Error: envelopeBody{Code: he.Code, Message: he.Message, Details: he.Details}})
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorCode is one row of a package's error table: a sentinel error and
// the wire error it becomes.
type ErrorCode struct {
	Err        error
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// ErrorTable is a package's one mapping from its sentinel errors to wire
// errors, declared once beside its errors (as nats-server generates its
// API errors from one table). Handlers return domain errors; the package
// passes them through Wire at its edge.
type ErrorTable []ErrorCode

// Wire returns err as the client should see it: an *Error already in the
// chain as is; otherwise the first row whose Err matches (errors.Is), as
// an *Error wrapping err; otherwise err unchanged (WriteError turns it
// into a 500 whose cause is not shown). nil stays nil.
func (t ErrorTable) Wire(err error) error {
	if err == nil {
		return nil
	}
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	for _, c := range t {
		if errors.Is(err, c.Err) {
			return &Error{Status: c.Status, Code: c.Code, Message: c.Message, RetryAfter: c.RetryAfter, Err: err}
		}
	}
	return err
}

// Known reports whether Wire maps err to a client error (an *Error), as
// opposed to an internal failure worth logging.
func (t ErrorTable) Known(err error) bool {
	var he *Error
	return errors.As(t.Wire(err), &he)
}
