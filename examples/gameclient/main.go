// Command gameclient is a minimal game client written against cellgrid's
// public client SDK (client/, client/gameconn) from its own Go module.
//
// It runs the whole player loop of docs/protocol.md: guest login at the
// global layer, GET /topology, UDP pings to every cell's beacon, join
// matchmaking at the closest cell with the measured latencies, poll the
// ticket until it holds a relay address and connect token, then HELLO and
// KCP through the relay to the game server: JOIN, ACCEPT, INPUTs at the
// server's tick rate, SNAPSHOTs, END.
//
//	go run ./gameclient --global http://127.0.0.1:8080 --mode duel
//
// Run two of them against `cellgrid dev` to fill a duel.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/proto/wire"
)

func main() {
	global := flag.String("global", "http://127.0.0.1:8080", "base URL of the global layer")
	device := flag.String("device", "", "guest device id (16-128 chars of [A-Za-z0-9_.:-]); empty = random")
	mode := flag.String("mode", "duel", "game mode to queue for")
	flag.Parse()
	if *device == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		*device = "example-" + hex.EncodeToString(b)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := play(ctx, *global, *device, *mode); err != nil {
		slog.Error("gameclient", "err", err)
		os.Exit(1)
	}
}

func play(ctx context.Context, globalURL, device, mode string) error {
	c, err := client.New(client.Config{GlobalURL: globalURL})
	if err != nil {
		return err
	}
	s, err := c.LoginDevice(ctx, device)
	if err != nil {
		return err
	}
	slog.Info("logged in", "player", s.PlayerID, "access_token_expires_in_s", s.ExpiresIn)

	cell, latencies, err := c.BestCell(ctx, client.ProbeConfig{})
	if err != nil {
		return err
	}
	slog.Info("closest cell", "cell", cell.ID, "region", cell.Region, "latencies_ms", latencies)

	ticket, err := c.Join(ctx, cell, client.JoinRequest{GameMode: mode, LatenciesMS: latencies})
	if err != nil {
		return err
	}
	slog.Info("queued", "ticket", ticket)
	session, err := c.WaitMatch(ctx, cell, ticket, 250*time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			// Leave the queue on Ctrl-C; a ticket already matched cannot be
			// cancelled (409 not_cancellable), which is fine here.
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = c.Cancel(cctx, cell, ticket)
		}
		return err
	}
	slog.Info("match ready", "session", session.ID, "relay", session.RelayAddr, "token_expires", session.ExpiresAt)

	gc, err := client.Play(ctx, session)
	var refused *gameconn.RefusedError
	var rejected *gameconn.RelayRejectError
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("game server refused the join: %s", refused.Reason)
	case errors.As(err, &rejected):
		return fmt.Errorf("relay rejected the hello: %s", rejected.Reason)
	case err != nil:
		return err
	}
	defer gc.Close()
	acc := gc.Accept()
	slog.Info("joined", "slot", acc.Slot, "players", len(acc.Players), "tick_rate", acc.TickRate)

	rate := max(int(acc.TickRate), 1)
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	var seq uint32
	var last wire.Snapshot
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case snap, ok := <-gc.Snapshots():
			if !ok {
				if end, ok := gc.End(); ok {
					slog.Info("match over", "reason", end.Reason, "winner_slot", end.WinnerSlot,
						"won", end.WinnerSlot == acc.Slot, "scores", end.Scores)
					return nil
				}
				return fmt.Errorf("stream ended: %w", gc.Err())
			}
			last = snap
		case <-t.C:
			seq++
			// Walk towards the arena centre, firing every other tick.
			in := wire.Input{Seq: seq, Fire: seq%2 == 0}
			for _, p := range last.Players {
				if p.Slot == acc.Slot {
					in.DX = int16(clamp((acc.ArenaW/2-p.X)/8, int32(acc.MaxStep)))
					in.DY = int16(clamp((acc.ArenaH/2-p.Y)/8, int32(acc.MaxStep)))
				}
			}
			if err := gc.SendInput(in); err != nil {
				return err
			}
		}
	}
}

func clamp(v, limit int32) int32 { return max(-limit, min(v, limit)) }
