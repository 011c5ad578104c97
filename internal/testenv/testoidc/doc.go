// Package testoidc is the test OIDC provider of the test environment: a
// real OIDC server (zitadel/oidc's example provider with in-memory storage)
// started in-process over HTTP, which issues ID tokens through a real
// authorization-code flow, plus forgeries for refusal tests. It is apart
// from testenv so only the tests that log in through OIDC link it.
package testoidc
