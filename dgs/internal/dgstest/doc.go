// Package dgstest holds test helpers shared by the dgs packages: a
// scripted player (Bot).
package dgstest
