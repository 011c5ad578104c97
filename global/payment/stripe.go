package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors.
var (
	// ErrBadSignature: missing, malformed, forged or stale signature.
	ErrBadSignature = errors.New("webhook signature invalid")
	// ErrBadEvent: signed, but not an event we can apply.
	ErrBadEvent = errors.New("webhook event invalid")
)

// Event is a verified webhook event.
type Event struct {
	ID   string
	Type string
	// Payment says what the event tells about a checkout's payment;
	// PaymentNone for event types that do not concern one.
	Payment PaymentState
	// TopUp is set when Payment is PaymentPaid (credit it, once per
	// Reference) and, with what the event carries, when PaymentFailed.
	TopUp *TopUp
}

// PaymentState is a checkout's payment as one event reports it.
type PaymentState int

const (
	// PaymentNone: the event is not about a checkout's payment.
	PaymentNone PaymentState = iota
	// PaymentPaid: the money is collected; credit the top-up once.
	PaymentPaid
	// PaymentPending: the checkout completed but a delayed payment method
	// (bank debit, voucher) has not paid yet; a later event says how it ended.
	PaymentPending
	// PaymentFailed: the delayed payment failed; nothing is credited.
	PaymentFailed
)

func (s PaymentState) String() string {
	return [...]string{"none", "paid", "pending", "failed"}[s]
}

// TopUp credits Amount of Currency to PlayerID.
type TopUp struct {
	PlayerID  uuid.UUID
	Currency  string
	Amount    int64
	Reference string // provider's object id (checkout session)
}

// Gateway verifies and decodes a payment provider's webhook.
type Gateway interface {
	Name() string
	Verify(h http.Header, body []byte, now time.Time) (Event, error)
}

// Stripe verifies Stripe webhooks signed with an endpoint secret.
type Stripe struct {
	Secret    string
	Tolerance time.Duration // 5m when 0
}

// Name implements Gateway.
func (s Stripe) Name() string { return "stripe" }

// SignatureHeader is the Stripe-Signature value for body at t (tests, and
// the contract written down).
func SignatureHeader(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + sign(secret, ts, body)
}

func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify implements Gateway.
func (s Stripe) Verify(h http.Header, body []byte, now time.Time) (Event, error) {
	tol := s.Tolerance
	if tol <= 0 {
		tol = 5 * time.Minute
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(h.Get("Stripe-Signature"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 || s.Secret == "" {
		return Event{}, fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	want, _ := hex.DecodeString(sign(s.Secret, ts, body))
	ok := false
	for _, sig := range sigs {
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return Event{}, fmt.Errorf("%w: no matching v1 signature", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tol || d < -tol {
		return Event{}, fmt.Errorf("%w: timestamp outside tolerance (%v)", ErrBadSignature, d.Round(time.Second))
	}
	var raw struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object struct {
				ID            string            `json:"id"`
				AmountTotal   int64             `json:"amount_total"`
				PaymentStatus string            `json:"payment_status"`
				Metadata      map[string]string `json:"metadata"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.ID == "" || raw.Type == "" {
		return Event{}, fmt.Errorf("%w: not a Stripe event", ErrBadEvent)
	}
	ev := Event{ID: raw.ID, Type: raw.Type}
	o := raw.Data.Object
	switch raw.Type {
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		// Stripe: a completed session is paid only when payment_status says
		// so; with a delayed method it is "unpaid" and
		// async_payment_succeeded (status "paid") follows.
		switch o.PaymentStatus {
		case "paid", "no_payment_required":
			ev.Payment = PaymentPaid
		case "unpaid":
			if raw.Type == "checkout.session.async_payment_succeeded" {
				return ev, fmt.Errorf("%w: %s with payment_status unpaid", ErrBadEvent, raw.Type)
			}
			ev.Payment = PaymentPending
			return ev, nil
		default:
			return ev, fmt.Errorf("%w: payment_status %q", ErrBadEvent, o.PaymentStatus)
		}
	case "checkout.session.async_payment_failed":
		if o.ID == "" {
			return ev, fmt.Errorf("%w: checkout session id", ErrBadEvent)
		}
		ev.Payment = PaymentFailed
		ev.TopUp = &TopUp{Currency: o.Metadata["currency"], Amount: o.AmountTotal, Reference: o.ID}
		if pid, err := uuid.Parse(o.Metadata["player_id"]); err == nil {
			ev.TopUp.PlayerID = pid
		}
		return ev, nil
	default:
		return ev, nil
	}
	if o.ID == "" {
		return ev, fmt.Errorf("%w: checkout session id", ErrBadEvent)
	}
	pid, err := uuid.Parse(o.Metadata["player_id"])
	if err != nil {
		return ev, fmt.Errorf("%w: metadata.player_id", ErrBadEvent)
	}
	amount := o.AmountTotal
	if s := o.Metadata["credit_amount"]; s != "" {
		if amount, err = strconv.ParseInt(s, 10, 64); err != nil {
			return ev, fmt.Errorf("%w: metadata.credit_amount", ErrBadEvent)
		}
	}
	if amount <= 0 || o.Metadata["currency"] == "" {
		return ev, fmt.Errorf("%w: amount or metadata.currency", ErrBadEvent)
	}
	ev.TopUp = &TopUp{PlayerID: pid, Currency: o.Metadata["currency"], Amount: amount, Reference: o.ID}
	return ev, nil
}
