package cell

import (
	"bytes"
	_ "embed"
)

// openAPIDocument is the OpenAPI 3.1 description of a cell's HTTP API (matchmaking and telemetry intake),
// served without a token at GET /openapi.json. openapi_test.go fails when a
// registered route is missing from it or it names a route that is not
// registered, and checks real responses against its schemas.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns a copy of the OpenAPI 3.1 document this server serves at
// /openapi.json.
func OpenAPI() []byte { return bytes.Clone(openAPIDocument) }
