package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// MaxBody is the default request body limit.
const MaxBody = 64 << 10

// DecodeJSON reads r's body (at most limit bytes, MaxBody when 0) into v,
// refusing unknown fields, trailing data and non-JSON content types.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if limit <= 0 {
		limit = MaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "body must be application/json"}
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("body exceeds %d bytes", limit)}
		case errors.Is(err, io.EOF):
			return BadRequest("invalid_json", "request body is empty")
		default:
			return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: err.Error()}
		}
	}
	if dec.More() {
		return BadRequest("invalid_json", "request body has trailing data")
	}
	return nil
}

// Handler is an http handler that returns an error; Handle adapts it and
// writes the error envelope.
type Handler func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h to http.HandlerFunc.
func Handle(h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, err)
		}
	}
}
