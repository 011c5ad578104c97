// Package bots is a swarm of simulated players built only on the client
// SDK: each bot logs in, probes the cells, joins matchmaking at the best
// one, plays its match through the relay with plausible inputs (or, when
// told to cheat, impossible ones) and reports what it measured. `cellgrid
// bots` and the end-to-end tests run it.
package bots
