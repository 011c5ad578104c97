// Package client breaks client-imports-server, and reaches internal/
// through client/gameconn.
package client

import (
	_ "example.com/fix/client/gameconn"
	_ "example.com/fix/proto/events"
	_ "example.com/fix/relay"
)
