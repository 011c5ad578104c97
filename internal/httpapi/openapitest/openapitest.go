package openapitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// Load parses an OpenAPI document (no external $refs) and validates it.
func Load(data []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("openapi load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi validate: %w", err)
	}
	return doc, nil
}

// Operations lists the document's operations as "METHOD /path" (the
// http.ServeMux pattern syntax, which shares OpenAPI's {name} templates).
func Operations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// Diff compares the routes a server registered ("METHOD /path" patterns)
// with the document: undocumented are registered but not documented,
// unregistered are documented but not registered. A method-less pattern
// (a catch-all mount) is always undocumented: it hides routes from the
// comparison.
func Diff(doc *openapi3.T, routes []string) (undocumented, unregistered []string) {
	ops := Operations(doc)
	reg := map[string]bool{}
	for _, r := range routes {
		method, path := httpapi.SplitRoute(r)
		key := method + " " + path
		reg[key] = true
		if method == "" || !slices.Contains(ops, key) {
			undocumented = append(undocumented, r)
		}
	}
	for _, op := range ops {
		if !reg[op] {
			unregistered = append(unregistered, op)
		}
	}
	return undocumented, unregistered
}

// CheckRoutes fails t when Diff finds a difference.
func CheckRoutes(t testing.TB, doc *openapi3.T, routes []string) {
	t.Helper()
	if len(routes) == 0 {
		t.Fatal("openapi: the server registered no routes")
	}
	undocumented, unregistered := Diff(doc, routes)
	for _, r := range undocumented {
		t.Errorf("openapi: route %q is registered but not documented", r)
	}
	for _, r := range unregistered {
		t.Errorf("openapi: operation %q is documented but not registered", r)
	}
}

// Validator checks exchanges with a server against its document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	mu sync.Mutex
	// mu guards seen.
	seen map[string]bool // "METHOD /path STATUS" of every checked exchange
}

// NewValidator builds a Validator for doc (which Load returned).
func NewValidator(doc *openapi3.T) (*Validator, error) {
	r, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	return &Validator{doc: doc, router: r, seen: map[string]bool{}}, nil
}

// Check validates one exchange: the operation must be documented, the
// status documented for it, and the response's headers and body must match
// its schema. The request is checked too when the server accepted it
// (status < 400): a request the server takes must be one the document
// allows. An operation that requires a token must have answered 401 when
// the request carried none.
func (v *Validator) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s: no documented operation: %w", req.Method, req.URL.Path, err)
	}
	v.mu.Lock()
	v.seen[fmt.Sprintf("%s %s %d", req.Method, route.Path, status)] = true
	v.mu.Unlock()
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	ctx := context.Background()
	var errs []error
	if status < 400 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("accepted request does not match the document: %w", err))
		}
	}
	secured := v.doc.Security
	if route.Operation.Security != nil {
		secured = *route.Operation.Security
	}
	if len(secured) > 0 && req.Header.Get("Authorization") == "" && status != http.StatusUnauthorized {
		errs = append(errs, fmt.Errorf("the operation requires a token but answered %d without one", status))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response does not match the document: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s %s -> %d %s: %w", req.Method, req.URL.RequestURI(), status, truncate(body), err)
	}
	return nil
}

// Seen lists the "METHOD /path STATUS" of every exchange checked so far.
func (v *Validator) Seen() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, 0, len(v.seen))
	for k := range v.seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Transport returns a RoundTripper (over base, http.DefaultTransport when
// nil) that Checks every exchange and reports a mismatch with t.Errorf.
func (v *Validator) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, t: t, base: base}
}

// Client is an *http.Client whose every exchange is Checked.
func (v *Validator) Client(t testing.TB) *http.Client {
	return &http.Client{Transport: v.Transport(t, nil)}
}

type transport struct {
	v    *Validator
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := tr.v.Check(req, reqBody, resp.StatusCode, resp.Header, body); err != nil {
		tr.t.Errorf("openapi: %s", brief(err))
	}
	return resp, nil
}

// brief drops the schema and value dumps kin-openapi appends to a schema
// error: the reason and the JSON pointer are what a reader needs.
func brief(err error) string {
	var out []string
	skip := false
	for _, line := range strings.Split(err.Error(), "\n") {
		switch t := strings.TrimSpace(line); {
		case t == "Schema:" || t == "Value:":
			skip = true
		case skip && (strings.HasPrefix(line, "  ") || t == ""):
		default:
			skip = false
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func truncate(b []byte) string {
	b = bytes.TrimSpace(b)
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
