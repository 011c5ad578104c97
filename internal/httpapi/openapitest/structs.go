package openapitest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// JSONFields lists the JSON object keys encoding/json writes for a struct
// value (embedded structs flattened, "-" skipped) and those it always
// writes (no omitempty).
func JSONFields(v any) (all, always []string) {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" && opts == "" {
				continue
			}
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			all = append(all, name)
			if !slices.Contains(strings.Split(opts, ","), "omitempty") && !slices.Contains(strings.Split(opts, ","), "omitzero") {
				always = append(always, name)
			}
		}
	}
	walk(t)
	slices.Sort(all)
	slices.Sort(always)
	return all, always
}

// SchemaDrift compares the component schema name with the Go type of v:
// the schema's properties must be exactly the JSON fields of v, and its
// required list exactly the fields encoding/json always writes (for a
// response) or, when request is true, a subset of the fields.
func SchemaDrift(doc *openapi3.T, name string, v any, request bool) error {
	ref := doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("schema %s: not in components", name)
	}
	var props []string
	for p := range ref.Value.Properties {
		props = append(props, p)
	}
	slices.Sort(props)
	required := slices.Sorted(slices.Values(ref.Value.Required))
	all, always := JSONFields(v)
	var errs []string
	if !slices.Equal(props, all) {
		errs = append(errs, fmt.Sprintf("properties %v, the Go type %T has %v", props, v, all))
	}
	if request {
		for _, r := range required {
			if !slices.Contains(all, r) {
				errs = append(errs, fmt.Sprintf("requires %q, which %T does not have", r, v))
			}
		}
	} else if !slices.Equal(required, always) {
		errs = append(errs, fmt.Sprintf("required %v, the Go type %T always writes %v", required, v, always))
	}
	if len(errs) > 0 {
		return fmt.Errorf("schema %s: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// CheckSchemas fails t for each component schema that drifted from its Go
// type (responses maps schema name to a value of the type the server
// writes, requests to the type it decodes).
func CheckSchemas(t testing.TB, doc *openapi3.T, responses, requests map[string]any) {
	t.Helper()
	for name, v := range responses {
		if err := SchemaDrift(doc, name, v, false); err != nil {
			t.Error("openapi: " + err.Error())
		}
	}
	for name, v := range requests {
		if err := SchemaDrift(doc, name, v, true); err != nil {
			t.Error("openapi: " + err.Error())
		}
	}
}
