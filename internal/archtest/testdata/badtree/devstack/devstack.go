// Package devstack is the composition root.
package devstack

import _ "example.com/fix/cell"
