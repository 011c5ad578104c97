package global

import _ "embed" // openapi.json

// openAPIDocument is the OpenAPI 3.1 description of the global layer's HTTP
// API (auth, profiles, store, leaderboards, achievements, topology, admin,
// payments), served without a token at GET /openapi.json. openapi_test.go
// fails when a registered route is missing from it or it names a route that
// is not registered, and checks real responses against its schemas.
//
//go:embed openapi.json
var openAPIDocument []byte
