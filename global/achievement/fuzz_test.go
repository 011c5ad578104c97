package achievement

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/cellgrid/cellgrid/internal/httpapi"
)

// FuzzStorageValue feeds arbitrary values to PUT /storage's check. A
// refusal is a 4xx *httpapi.Error; an accepted value is a UTF-8 JSON
// document that decodes and re-encodes. Seeds:
// testdata/fuzz/FuzzStorageValue and the f.Add calls.
func FuzzStorageValue(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"x",null,true,{"b":[]}]`, `"\u0000"`, "\"\xff\"", `{"a":`, `1e400`, ` 7 `, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := checkStorageValue(body); err != nil {
			var he *httpapi.Error
			if !errors.As(err, &he) || he.Status < 400 || he.Status >= 500 {
				t.Fatalf("refusal is not a 4xx API error: %#v", err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted value does not decode: %v", err)
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("accepted value does not re-encode: %v", err)
		}
	})
}
