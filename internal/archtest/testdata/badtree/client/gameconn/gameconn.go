// Package gameconn imports internal/ directly.
package gameconn

import _ "example.com/fix/internal/plumb"
