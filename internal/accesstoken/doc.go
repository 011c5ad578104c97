// Package accesstoken owns cellgrid's access JWTs: signing them (EdDSA with
// a kid header, via go-jose) for the global layer, and verifying them
// locally wherever a request arrives (cells, global) against the global
// layer's cached JWKS (go-oidc's RemoteKeySet, which refetches the JWKS when
// a token names an unknown kid). No call to the global layer per request.
package accesstoken
