package httpapi

import (
	"fmt"
	"net/http"
	"strings"
)

// JSONErrors wraps h so that a 404 or 405 written as plain text -- by
// http.ServeMux for a path or method it has no route for, or by http.Error
// and http.NotFound in a handler -- goes out as the JSON envelope
// {"error":{"code","message"}} with Content-Type application/json. Answers
// that are already JSON pass unchanged. NewServer wraps every server with it.
func JSONErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&plainErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

// plainErrorWriter replaces a plain-text 404/405 with the envelope and
// drops the plain-text body that follows.
type plainErrorWriter struct {
	http.ResponseWriter
	r           *http.Request
	wroteHeader bool
	replaced    bool // the envelope was written; later writes are dropped
}

func (w *plainErrorWriter) WriteHeader(status int) {
	if w.wroteHeader {
		w.ResponseWriter.WriteHeader(status) // let net/http report the superfluous call
		return
	}
	w.wroteHeader = true
	if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) &&
		!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		w.replaced = true
		w.Header().Del("Content-Length")
		WriteError(w.ResponseWriter, routeError(status, w.r, w.Header().Get("Allow")))
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *plainErrorWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush,
// deadlines).
func (w *plainErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routeError is the envelope's error for a request no route answers.
func routeError(status int, r *http.Request, allow string) *Error {
	if status == http.StatusMethodNotAllowed {
		msg := fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)
		if allow != "" {
			msg += " (allowed: " + allow + ")"
		}
		return &Error{Status: status, Code: "method_not_allowed", Message: msg}
	}
	return NotFound(fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
}
