package wire

import (
	"errors"
	"fmt"

	"github.com/cellgrid/cellgrid/relay/packet"
)

// Errors returned by the decoders and the client.
var (
	// ErrMalformed means a frame or message does not follow the format.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrFrameTooLarge means a frame's length prefix exceeds MaxFrame.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrClosed means the client was closed.
	ErrClosed = errors.New("wire: client closed")
)

// RefusedError is returned by Dial when the game server answered REFUSE.
type RefusedError struct{ Reason RefuseReason }

func (e *RefusedError) Error() string { return "wire: join refused: " + e.Reason.String() }

// RelayRejectError is returned by Dial when the relay answered the HELLO
// with REJECT.
type RelayRejectError struct{ Reason packet.RejectReason }

func (e *RelayRejectError) Error() string {
	return fmt.Sprintf("wire: relay rejected hello: %s", e.Reason)
}
