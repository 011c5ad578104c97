package gameconn

import (
	"errors"
	"fmt"

	"github.com/cellgrid/cellgrid/proto/packet"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// ErrClosed means the client was closed.
var ErrClosed = errors.New("gameconn: client closed")

// RefusedError is returned by Dial when the game server answered REFUSE.
type RefusedError struct{ Reason wire.RefuseReason }

func (e *RefusedError) Error() string { return "gameconn: join refused: " + e.Reason.String() }

// RelayRejectError is returned by Dial when the relay answered the HELLO
// with REJECT.
type RelayRejectError struct{ Reason packet.RejectReason }

func (e *RelayRejectError) Error() string {
	return fmt.Sprintf("gameconn: relay rejected hello: %s", e.Reason)
}
