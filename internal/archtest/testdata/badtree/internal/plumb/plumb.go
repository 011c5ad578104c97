// Package plumb breaks internal-imports-domain.
package plumb

import _ "example.com/fix/cell"
