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
	// ErrAllocationExpired means an allocation was (or would have been)
	// accepted after its deadline: the cell has given up on this server.
	ErrAllocationExpired = errors.New("dgs sdk: allocation expired")
	// ErrAllocationCancelled means the session's allocation was withdrawn
	// (late acceptance, or a cancel from the cell): its result is not
	// published, as another server may hold the session.
	ErrAllocationCancelled = errors.New("dgs sdk: allocation cancelled")
)
