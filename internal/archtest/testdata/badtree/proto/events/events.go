// Package events breaks proto-imports-beyond-allowlist.
package events

import (
	_ "encoding/json"

	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/pkg/errors"
)
