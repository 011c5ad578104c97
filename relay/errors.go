package relay

import "errors"

var (
	// ErrClosed is returned by Run after Close, or when Run is called twice.
	ErrClosed = errors.New("relay: closed")
)
