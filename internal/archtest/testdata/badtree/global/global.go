// Package global is allowed to import internal/.
package global

import _ "example.com/fix/internal/plumb"
