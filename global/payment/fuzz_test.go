package payment_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/global/payment"
)

// FuzzStripeWebhook feeds arbitrary bodies and Stripe-Signature headers to
// the webhook's verifier and decoder. With the fuzzed header, nothing is
// accepted unless the header carries the body's documented signature. With
// the body signed correctly, the answer is an event or ErrBadEvent, and an
// event that credits carries everything a credit needs. Seeds:
// testdata/fuzz/FuzzStripeWebhook and the f.Add calls.
func FuzzStripeWebhook(f *testing.F) {
	f.Add([]byte(vectorBody), "t=1700000000,v1="+vectorV1)
	f.Add(checkoutEvent("evt_1", "checkout.session.completed", "cs_1", "paid", uuid.NewString(), 5), "t=1700000000,v1=00")
	f.Add(checkoutEvent("evt_2", "checkout.session.completed", "cs_2", "unpaid", uuid.NewString(), 5), "")
	f.Add(checkoutEvent("evt_3", "checkout.session.async_payment_succeeded", "", "paid", "x", -5), "t=,v1=")
	f.Add(checkoutEvent("evt_4", "checkout.session.async_payment_failed", "cs_4", "unpaid", "", 0), "v1=zz,t=1")
	f.Add([]byte(`{"id":"e","type":"checkout.session.completed","data":{"object":{"id":"cs","payment_status":"paid","amount_total":1e30,"metadata":{"player_id":"0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b","currency":"gems","credit_amount":"-1"}}}}`), "t=1700000000")
	gw := payment.Stripe{Secret: vectorSecret}
	at := time.Unix(vectorTime, 0)
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		h := http.Header{}
		h.Set("Stripe-Signature", sig)
		if _, err := gw.Verify(h, body, at); err == nil {
			if !strings.Contains(sig, "v1="+hmacHex(vectorSecret, "1700000000."+string(body))) {
				t.Fatalf("accepted without the documented signature: %q", sig)
			}
		} else if !errors.Is(err, payment.ErrBadSignature) && !errors.Is(err, payment.ErrBadEvent) {
			t.Fatalf("unexpected error %v", err)
		}

		h.Set("Stripe-Signature", payment.SignatureHeader(vectorSecret, at, body))
		ev, err := gw.Verify(h, body, at)
		switch {
		case errors.Is(err, payment.ErrBadSignature):
			t.Fatalf("correctly signed body refused as a bad signature: %v", err)
		case err != nil:
			if !errors.Is(err, payment.ErrBadEvent) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("event without id or type: %+v", ev)
		}
		switch ev.Payment {
		case payment.PaymentPaid:
			tu := ev.TopUp
			if tu == nil || tu.Amount <= 0 || tu.Currency == "" || tu.Reference == "" || tu.PlayerID == uuid.Nil {
				t.Fatalf("paid event that cannot be credited: %+v %+v", ev, tu)
			}
		case payment.PaymentFailed:
			if ev.TopUp == nil || ev.TopUp.Reference == "" {
				t.Fatalf("failed payment without its checkout: %+v", ev)
			}
		default:
			if ev.TopUp != nil {
				t.Fatalf("%s event with a top-up: %+v", ev.Payment, ev)
			}
		}
	})
}
