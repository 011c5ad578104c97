package sdk

import "errors"

// Errors returned by the SDK.
var (
	// ErrNotReady means an allocation arrived while the server was not Ready.
	ErrNotReady = errors.New("dgs sdk: not ready")
	// ErrShutdown means the server has shut down: no state change is allowed.
	ErrShutdown = errors.New("dgs sdk: shut down")
	// ErrNoSession means a result without a session id.
	ErrNoSession = errors.New("dgs sdk: match result without session id")
)
