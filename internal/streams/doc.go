// Package streams holds the JetStream plumbing the global layer uses to
// consume what the cells publish: a global stream sourcing one stream per
// cell, read by one durable explicit-ack consumer. The streams' names and
// subjects are public contracts and live in proto/events.
package streams
