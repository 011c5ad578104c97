// Package natsauth is how every NATS connection of cellgrid proves who it
// is and what it may do.
//
// It uses NATS decentralized authentication ("operator mode"): an operator
// key signs two accounts (the system account and APP, where every cellgrid
// subject and stream lives); APP's key signs one user JWT per role
// (global, cell, relay, ops) with explicit publish and subscribe
// permissions. Each cell also holds a scoped signing key of APP whose
// permission template only allows one DGS's own subjects, named by the
// user's name: the cell mints a fresh, expiring credential for every DGS
// it launches, and no NATS server has to be told about it. Routes and
// gateways authenticate with a shared cluster secret, and everything can
// run over TLS.
//
// Trust holds the private keys (dev stack, `cellgrid nats init`);
// ServerAuth is what a NATS server needs (public JWTs and the route
// secret); natscreds.Creds is one user's credential, in the standard .creds format.
package natsauth
