package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// checkPayload enforces what every store downstream can hold: no NUL in any
// key or string (PostgreSQL's JSONB refuses \u0000), nesting at most
// maxDepth objects/arrays deep, and at most maxBytes once encoded. The body
// was checked to be valid UTF-8 before decoding (encoding/json would
// otherwise replace bad bytes silently).
func checkPayload(p map[string]any, maxDepth, maxBytes int) error {
	if p == nil {
		return nil
	}
	if err := checkValue(p, 1, maxDepth); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if len(b) > maxBytes {
		return fmt.Errorf("payload: %d bytes encoded, limit %d", len(b), maxBytes)
	}
	return nil
}

func checkValue(v any, depth, maxDepth int) error {
	switch v := v.(type) {
	case map[string]any:
		if depth > maxDepth {
			return fmt.Errorf("nested deeper than %d", maxDepth)
		}
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 {
				return errors.New("NUL character in a key")
			}
			if err := checkValue(e, depth+1, maxDepth); err != nil {
				return err
			}
		}
	case []any:
		if depth > maxDepth {
			return fmt.Errorf("nested deeper than %d", maxDepth)
		}
		for _, e := range v {
			if err := checkValue(e, depth+1, maxDepth); err != nil {
				return err
			}
		}
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return errors.New("NUL character in a string")
		}
	}
	return nil
}

// decodeUTF8JSON is httpapi.DecodeJSON after checking that the whole body
// is valid UTF-8: encoding/json replaces invalid bytes with U+FFFD without
// an error, so a client's malformed text would be stored altered.
func decodeUTF8JSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpapi.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("body exceeds %d bytes", limit)}
		}
		return httpapi.BadRequest("invalid_body", "reading the body: "+err.Error())
	}
	if !utf8.Valid(body) {
		return httpapi.BadRequest("invalid_utf8", "body is not valid UTF-8")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return httpapi.DecodeJSON(w, r, v, limit)
}
