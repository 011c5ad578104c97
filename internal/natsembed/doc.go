// Package natsembed owns the embedded NATS servers of cellgrid: one server
// (with JetStream) per cell and one for the global layer, each its own NATS
// cluster, joined by gateways into a supercluster. It also picks free ports
// and waits until JetStream is usable.
//
// A supercluster always requires authentication (internal/natsauth,
// operator mode): clients, routes and gateways alike; TLS is on when
// certificates are configured. Server.Connect uses an admin credential
// (tests, readiness checks); components connect with their own role's
// credential (Server.ConnectAs). Never nats.Connect a bare URL.
package natsembed
