package openapitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// fixture is a small document in the shape of the servers' ones.
const fixture = `{
  "openapi": "3.1.0",
  "info": {"title": "fixture", "version": "1"},
  "components": {
    "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "additionalProperties": false, "properties": {
        "error": {"type": "object", "required": ["code", "message"], "additionalProperties": false,
          "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
      "Thing": {"type": "object", "required": ["id", "n"], "additionalProperties": false,
        "properties": {"id": {"type": "string"}, "n": {"type": "integer"}, "note": {"type": ["string", "null"]}}}
    }
  },
  "paths": {
    "/things/{id}": {"get": {"operationId": "getThing", "security": [{"bearerAuth": []}],
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {
        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
        "401": {"description": "no token", "content": {"application/json": {"schema": {"allOf": [
          {"$ref": "#/components/schemas/Error"},
          {"properties": {"error": {"properties": {"code": {"enum": ["unauthorized"]}}}}}]}}}}}}},
    "/things": {"post": {"operationId": "makeThing", "security": [],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
      "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}}}
  }
}`

func load(t *testing.T, s string) *Validator {
	t.Helper()
	doc, err := Load([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadRefusesInvalidDocuments(t *testing.T) {
	cases := map[string]string{
		"not JSON":         `{"openapi": `,
		"no info":          `{"openapi": "3.1.0", "paths": {}}`,
		"dangling $ref":    strings.Replace(fixture, "#/components/schemas/Thing", "#/components/schemas/Nope", 1),
		"undeclared param": strings.Replace(fixture, `"/things/{id}"`, `"/things/{thingId}"`, 1),
		"bad schema type":  strings.Replace(fixture, `"type": "integer"`, `"type": "int"`, 1),
	}
	for name, doc := range cases {
		if _, err := Load([]byte(doc)); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
	if _, err := Load([]byte(fixture)); err != nil {
		t.Fatalf("fixture: %v", err)
	}
}

func TestDiffFindsUndocumentedAndUnregisteredRoutes(t *testing.T) {
	doc, err := Load([]byte(fixture))
	if err != nil {
		t.Fatal(err)
	}
	if u, m := Diff(doc, []string{"GET /things/{id}", "POST /things"}); len(u)+len(m) != 0 {
		t.Fatalf("matching routes: undocumented %v, unregistered %v", u, m)
	}
	// A route added to the server but not to the document, one removed
	// from the server but still documented, a wildcard renamed on one side
	// only, and a catch-all mount that would hide routes.
	u, m := Diff(doc, []string{"GET /things/{thingId}", "DELETE /things/{id}", "/"})
	if want := []string{"GET /things/{thingId}", "DELETE /things/{id}", "/"}; !slices.Equal(u, want) {
		t.Errorf("undocumented = %v, want %v", u, want)
	}
	if want := []string{"GET /things/{id}", "POST /things"}; !slices.Equal(m, want) {
		t.Errorf("unregistered = %v, want %v", m, want)
	}

	// CheckRoutes reports both kinds through t.
	rec := &recordingT{TB: t}
	CheckRoutes(rec, doc, []string{"GET /things/{id}", "PUT /things"})
	if len(rec.errors) != 2 || !strings.Contains(rec.errors[0], `"PUT /things" is registered but not documented`) ||
		!strings.Contains(rec.errors[1], `"POST /things" is documented but not registered`) {
		t.Errorf("CheckRoutes reported %q", rec.errors)
	}
}

// TestRouterRoutesMatchDocument ties the two halves together: the patterns
// an httpapi.Router records (with a mounted Router's routes in place of its
// "/") are what Diff compares.
func TestRouterRoutesMatchDocument(t *testing.T) {
	doc, err := Load([]byte(fixture))
	if err != nil {
		t.Fatal(err)
	}
	app := httpapi.NewRouter()
	app.Handle("GET /things/{id}", http.NotFoundHandler())
	app.HandleFunc("POST /things", http.NotFound)
	root := httpapi.NewRouter()
	root.Handle("/", app)
	if u, m := Diff(doc, root.Routes()); len(u)+len(m) != 0 {
		t.Fatalf("undocumented %v, unregistered %v", u, m)
	}
	app.HandleFunc("GET /extra", http.NotFound)
	if u, _ := Diff(doc, root.Routes()); !slices.Equal(u, []string{"GET /extra"}) {
		t.Fatalf("undocumented = %v, want [GET /extra]", u)
	}
}

func TestValidatorChecksExchanges(t *testing.T) {
	v := load(t, fixture)
	var answer struct {
		status int
		body   string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(answer.status)
		fmt.Fprint(w, answer.body)
	}))
	defer srv.Close()

	cases := []struct {
		name, method, path, auth, reqBody string
		status                            int
		body                              string
		wantErr                           string // "" = valid
	}{
		{"valid thing", "GET", "/things/a", "Bearer x", "", 200, `{"id":"a","n":1,"note":null}`, ""},
		{"documented error code", "GET", "/things/a", "", "", 401, `{"error":{"code":"unauthorized","message":"m"}}`, ""},
		{"missing field", "GET", "/things/a", "Bearer x", "", 200, `{"id":"a"}`, "doesn't match schema"},
		{"extra field", "GET", "/things/a", "Bearer x", "", 200, `{"id":"a","n":1,"new":true}`, "doesn't match schema"},
		{"wrong type", "GET", "/things/a", "Bearer x", "", 200, `{"id":"a","n":"1"}`, "doesn't match schema"},
		{"undocumented status", "GET", "/things/a", "Bearer x", "", 404, `{"error":{"code":"not_found","message":"m"}}`, "status is not supported"},
		{"undocumented error code", "GET", "/things/a", "", "", 401, `{"error":{"code":"expired","message":"m"}}`, "doesn't match schema"},
		{"error outside the envelope", "GET", "/things/a", "", "", 401, `{"code":"unauthorized"}`, "doesn't match schema"},
		{"secured route answered without a token", "GET", "/things/a", "", "", 200, `{"id":"a","n":1}`, "requires a token"},
		{"undocumented path", "GET", "/other", "", "", 200, `{}`, "no documented operation"},
		{"undocumented method", "DELETE", "/things/a", "", "", 200, `{}`, "no documented operation"},
		{"accepted request outside the schema", "POST", "/things", "", `{"id":"a"}`, 201, `{"id":"a","n":1}`, "accepted request does not match"},
		{"refused request is not checked", "POST", "/things", "", `{"id":"a"}`, 400, ``, "status is not supported"},
		{"valid request", "POST", "/things", "", `{"id":"a","n":2}`, 201, `{"id":"a","n":2}`, ""},
	}
	for _, c := range cases {
		answer.status, answer.body = c.status, c.body
		rec := &recordingT{TB: t}
		client := v.Client(rec)
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.reqBody))
		if c.reqBody != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got json.RawMessage
		_ = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if c.body != "" && string(got) != c.body {
			t.Errorf("%s: the transport changed the body to %s", c.name, got)
		}
		switch {
		case c.wantErr == "" && len(rec.errors) > 0:
			t.Errorf("%s: unexpected error %q", c.name, rec.errors)
		case c.wantErr != "" && (len(rec.errors) != 1 || !strings.Contains(rec.errors[0], c.wantErr)):
			t.Errorf("%s: errors %q, want one containing %q", c.name, rec.errors, c.wantErr)
		}
	}
	if seen := v.Seen(); !slices.Contains(seen, "GET /things/{id} 401") {
		t.Errorf("Seen() = %v", seen)
	}
}

// recordingT records Errorf instead of failing the test, to show a check
// fails.
type recordingT struct {
	testing.TB
	errors []string
}

func (r *recordingT) Helper() {}
func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingT) Fatal(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }

func TestSchemaDriftComparesGoTypes(t *testing.T) {
	doc, err := Load([]byte(fixture))
	if err != nil {
		t.Fatal(err)
	}
	type base struct {
		ID string `json:"id"`
	}
	type thing struct {
		base
		N      int     `json:"n"`
		Note   *string `json:"note,omitempty"`
		hidden int
		Skip   int `json:"-"`
	}
	if err := SchemaDrift(doc, "Thing", thing{}, false); err != nil {
		t.Fatal(err)
	}
	type thingNew struct {
		thing
		Added bool `json:"added"`
	}
	if err := SchemaDrift(doc, "Thing", thingNew{}, false); err == nil || !strings.Contains(err.Error(), "properties") {
		t.Errorf("a field added to the Go type: %v", err)
	}
	type thingLoose struct {
		ID   string  `json:"id,omitempty"`
		N    int     `json:"n"`
		Note *string `json:"note"`
	}
	if err := SchemaDrift(doc, "Thing", thingLoose{}, false); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("required fields changed: %v", err)
	}
	if err := SchemaDrift(doc, "Thing", thingLoose{}, true); err != nil {
		t.Errorf("as a request, required may be a subset: %v", err)
	}
	if err := SchemaDrift(doc, "Nope", thing{}, false); err == nil {
		t.Error("an unknown schema passed")
	}
	_ = thing{}.hidden
}
