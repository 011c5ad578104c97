// Package openapitest holds a server to its OpenAPI document in tests: the
// document loads and validates with kin-openapi (OpenAPI 3.1, JSON Schema
// 2020-12), every route the server registers is documented and every
// documented operation is registered (Diff, CheckRoutes), and each request
// and response a test exchanges with the running server matches the
// document (Validator, its Transport and Client).
//
// Only tests import it, so kin-openapi is not linked into the binary.
package openapitest
