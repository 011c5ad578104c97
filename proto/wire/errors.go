package wire

import "errors"

// Errors returned by the decoders.
var (
	// ErrMalformed means a frame or message does not follow the format.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrFrameTooLarge means a frame's length prefix exceeds MaxFrame.
	ErrFrameTooLarge = errors.New("wire: frame too large")
)
