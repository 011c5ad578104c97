// Package natscreds is the public side of cellgrid's NATS authentication:
// the .creds format a component (a game server above all) connects with,
// how it is handed over (a file path, or the text itself in the
// environment), and the reply-inbox prefix its permissions allow. A game
// server in another module connects with it through dgs/sdk; the roles and
// the keys that sign credentials stay in internal/natsauth.
package natscreds
