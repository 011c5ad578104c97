package fleet

import "errors"

var (
	// ErrNoReadyServer means no Ready server could take the match right now;
	// the autoscaler has been nudged. Retryable.
	ErrNoReadyServer = errors.New("fleet: no ready game server")
	// ErrClosed is returned by Allocate once Run has returned.
	ErrClosed = errors.New("fleet: closed")
)
