// Package sdk reaches internal/ through dgs/lifecycle.
package sdk

import (
	_ "example.com/fix/dgs/lifecycle"
	_ "example.com/fix/proto/events"
)
