package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Mux is what a component registers its routes on. *http.ServeMux and
// *Router satisfy it; a server builds its routes on a *Router so the
// patterns can be compared with its OpenAPI document.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// RouteLister is a handler that knows the "METHOD /path" patterns it serves.
type RouteLister interface {
	Routes() []string
}

// Router is an http.ServeMux that remembers every pattern registered on it.
// A Router mounted under a method-less "/" of another Router contributes
// its own routes instead of "/" (that is how Server lists an app's routes).
type Router struct {
	mux *http.ServeMux

	mu sync.Mutex
	// mu guards the fields below.
	patterns []string
	mounts   map[string]RouteLister // method-less "/" pattern -> the Router mounted there
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{mux: http.NewServeMux(), mounts: map[string]RouteLister{}}
}

// Handle registers handler for pattern (http.ServeMux syntax, e.g.
// "GET /player/{playerId}/profile") and records the pattern. It panics on
// a conflicting pattern, as http.ServeMux does.
func (r *Router) Handle(pattern string, handler http.Handler) {
	r.mux.Handle(pattern, handler)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patterns = append(r.patterns, pattern)
	if rl, ok := handler.(RouteLister); ok && pattern == "/" {
		r.mounts[pattern] = rl
	}
}

// HandleFunc registers a handler function for pattern.
func (r *Router) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(handler))
}

// ServeHTTP dispatches to the registered handlers.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mux.ServeHTTP(w, req)
}

// Routes returns the registered patterns, sorted, with a mounted Router's
// routes in place of its "/" pattern.
func (r *Router) Routes() []string {
	r.mu.Lock()
	pats := slices.Clone(r.patterns)
	mounts := make(map[string]RouteLister, len(r.mounts))
	for k, v := range r.mounts {
		mounts[k] = v
	}
	r.mu.Unlock()
	var out []string
	for _, p := range pats {
		if m, ok := mounts[p]; ok {
			out = append(out, m.Routes()...)
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Routes lists the "METHOD /path" patterns the server answers: /healthz,
// /readyz, /metrics and, when the app is a RouteLister (a *Router), the
// app's routes.
func (s *Server) Routes() []string { return s.routes.Routes() }

// ServeDocument answers with doc as application/json: a server's OpenAPI
// document at GET /openapi.json, which needs no access token.
func ServeDocument(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(doc)
		}
	})
}

// SplitRoute splits a "METHOD /path" pattern; method is "" for a pattern
// that matches every method.
func SplitRoute(pattern string) (method, path string) {
	if m, p, ok := strings.Cut(pattern, " "); ok {
		return m, strings.TrimSpace(p)
	}
	return "", pattern
}
