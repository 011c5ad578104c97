// Package devstack wires the whole of cellgrid on one machine, as
// `cellgrid dev` runs it and as the end-to-end tests do: a private
// PostgreSQL and one redis-server per component in a data folder, an
// embedded NATS supercluster (one cluster for the global layer, one per
// cell, joined by loopback gateways), the global layer and every cell with
// its local DGS launcher and relay. It owns start order and stop order.
package devstack
