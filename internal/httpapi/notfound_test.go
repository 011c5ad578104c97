package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// errorEnvelope fetches method url and returns status and the decoded
// envelope, failing unless the answer is application/json in the envelope.
func errorEnvelope(t *testing.T, method, url string) (int, http.Header, envelopeBody) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %q; want application/json", method, url, ct, body)
	}
	var env envelope
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("%s %s: body %q is not the error envelope (%v)", method, url, body, err)
	}
	if dec.More() {
		t.Fatalf("%s %s: body %q has more than the envelope", method, url, body)
	}
	return resp.StatusCode, resp.Header, env.Error
}

func TestServerAnswersUnknownRoutesWithEnvelope(t *testing.T) {
	app := http.NewServeMux()
	app.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 201, map[string]string{"ok": "yes"}) })
	app.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, Errorf(http.StatusNotFound, "thing_not_found", "no thing %s", r.PathValue("id")))
	})
	app.HandleFunc("GET /legacy", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	for _, tc := range []struct {
		name string
		app  http.Handler
	}{{"with app", app}, {"without app", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{}, Deps{Handler: tc.app})
			if err != nil {
				t.Fatal(err)
			}
			s.Start()
			defer s.Close()

			status, _, e := errorEnvelope(t, "GET", s.URL()+"/no/such/path")
			if status != 404 || e.Code != "not_found" || !strings.Contains(e.Message, "/no/such/path") {
				t.Errorf("unknown path: %d %+v", status, e)
			}
			if tc.app == nil {
				// /healthz is GET only: the mux's own 405.
				status, h, e := errorEnvelope(t, "DELETE", s.URL()+"/healthz")
				if status != 405 || e.Code != "method_not_allowed" || !strings.Contains(h.Get("Allow"), "GET") {
					t.Errorf("DELETE /healthz: %d %+v Allow=%q", status, e, h.Get("Allow"))
				}
				return
			}
			status, h, e := errorEnvelope(t, "GET", s.URL()+"/things")
			if status != 405 || e.Code != "method_not_allowed" || h.Get("Allow") != "POST" || !strings.Contains(e.Message, "POST") {
				t.Errorf("GET /things: %d %+v Allow=%q", status, e, h.Get("Allow"))
			}
			// A handler's own JSON 404 passes unchanged.
			status, _, e = errorEnvelope(t, "GET", s.URL()+"/things/7")
			if status != 404 || e.Code != "thing_not_found" || e.Message != "no thing 7" {
				t.Errorf("handler's 404: %d %+v", status, e)
			}
			// http.NotFound inside a handler is plain text: converted.
			status, _, e = errorEnvelope(t, "GET", s.URL()+"/legacy")
			if status != 404 || e.Code != "not_found" {
				t.Errorf("http.NotFound in a handler: %d %+v", status, e)
			}
			// Other answers are untouched.
			resp, err := http.Post(s.URL()+"/things", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 || strings.TrimSpace(string(b)) != `{"ok":"yes"}` {
				t.Errorf("POST /things: %d %s", resp.StatusCode, b)
			}
		})
	}
}
