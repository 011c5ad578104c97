// Package jobs is clean.
package jobs
