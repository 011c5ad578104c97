// Package lifecycle may import internal/ (a dgs package), but dgs/sdk
// reaches internal/ through it: public-sdk-depends-on-internal.
package lifecycle

import _ "example.com/fix/internal/plumb"
