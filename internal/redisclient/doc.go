// Package redisclient owns how cellgrid connects to Redis: one rueidis client
// per cell and one for the global layer, with the options every component
// shares (RESP3 client-side caching on, bounded timeouts) and a readiness check.
package redisclient
