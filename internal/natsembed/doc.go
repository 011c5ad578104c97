// Package natsembed owns the embedded NATS servers of cellgrid: one server
// (with JetStream) per cell and one for the global layer, each its own NATS
// cluster, joined by gateways into a supercluster. It also picks free ports
// and waits until JetStream is usable.
package natsembed
