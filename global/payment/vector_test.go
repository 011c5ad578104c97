package payment_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/global/payment"
)

// A Stripe-Signature built the way Stripe documents it
// (https://docs.stripe.com/webhooks#verify-manually): signed_payload is the
// timestamp, a '.', and the raw body; the v1 signature is the hex
// HMAC-SHA256 of signed_payload keyed with the endpoint secret. It is
// computed here with crypto/hmac, independently of the package's signer, and
// pinned (the same value comes from
// `printf '%s' "$t.$body" | openssl dgst -sha256 -hmac "$secret"`).
const (
	vectorSecret = "whsec_test_vector_secret"
	vectorTime   = 1700000000
	vectorBody   = `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_a1b2c3","object":"checkout.session","amount_total":499,"currency":"usd","payment_status":"paid","metadata":{"player_id":"0b6f2a4e-3c1d-4e5f-8a9b-1c2d3e4f5a6b","currency":"gems","credit_amount":"500"}}}}`
	vectorV1     = "91f674f2b9ec5460362541574109005f050461563cb64c06886a254f9bc2c964"
)

func TestStripeSignatureKnownVector(t *testing.T) {
	m := hmac.New(sha256.New, []byte(vectorSecret))
	m.Write([]byte("1700000000." + vectorBody))
	if got := hex.EncodeToString(m.Sum(nil)); got != vectorV1 {
		t.Fatalf("hand-computed v1 %s, pinned %s", got, vectorV1)
	}
	gw := payment.Stripe{Secret: vectorSecret}
	at := time.Unix(vectorTime, 0)
	header := func(v string) http.Header {
		h := http.Header{}
		h.Set("Stripe-Signature", v)
		return h
	}
	// Stripe's own header order and spacing: t first, then v1 (and a v0 test
	// signature that must be ignored).
	hdr := "t=1700000000,v1=" + vectorV1 + ",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
	ev, err := gw.Verify(header(hdr), []byte(vectorBody), at.Add(30*time.Second))
	if err != nil {
		t.Fatalf("known-good vector refused: %v", err)
	}
	if ev.ID != "evt_1NG8Du2eZvKYlo2CUI79vXWy" || ev.Payment != payment.PaymentPaid || ev.TopUp == nil ||
		ev.TopUp.Amount != 500 || ev.TopUp.Currency != "gems" || ev.TopUp.Reference != "cs_test_a1b2c3" {
		t.Fatalf("decoded %+v %+v", ev, ev.TopUp)
	}
	// The package's own signer produces the same header.
	if got := payment.SignatureHeader(vectorSecret, at, []byte(vectorBody)); got != "t=1700000000,v1="+vectorV1 {
		t.Fatalf("SignatureHeader %s", got)
	}

	refused := map[string]struct {
		hdr  string
		body string
		now  time.Time
	}{
		"tampered body":           {hdr, strings.Replace(vectorBody, `"500"`, `"50000"`, 1), at},
		"tampered timestamp":      {strings.Replace(hdr, "t=1700000000", "t=1700000001", 1), vectorBody, at},
		"timestamp too old":       {hdr, vectorBody, at.Add(5*time.Minute + time.Second)},
		"timestamp in the future": {hdr, vectorBody, at.Add(-5*time.Minute - time.Second)},
		"other secret":            {"t=1700000000,v1=" + hmacHex("whsec_other", "1700000000."+vectorBody), vectorBody, at},
		"body signed without t.":  {"t=1700000000,v1=" + hmacHex(vectorSecret, vectorBody), vectorBody, at},
		"v0 only":                 {"t=1700000000,v0=" + vectorV1, vectorBody, at},
	}
	for name, c := range refused {
		if _, err := gw.Verify(header(c.hdr), []byte(c.body), c.now); !errors.Is(err, payment.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
}

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
