// Package game breaks dgs-imports-cell-or-jobs.
package game

import (
	_ "example.com/fix/cell"
	_ "example.com/fix/jobs"
)
