// Package audit owns the ops audit log: one append-only row per operator
// action (who, in which role, what, on which target, why, the state before
// and after, and whether it worked), written inside the action's own
// transaction when the action is a database write, and paged newest first
// with an opaque cursor. Nothing in cellgrid updates or deletes a row.
package audit
