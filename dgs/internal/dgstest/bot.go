package dgstest

import (
	"math"

	"github.com/cellgrid/cellgrid/client/gameconn"
	"github.com/cellgrid/cellgrid/proto/wire"
)

// Bot plays the arena honestly until the stream ends: one input per
// snapshot, moves towards the nearest connected opponent (never closer than
// 4 units) within MaxStep, aims at it and fires no faster than the
// cooldown. It returns every snapshot it saw.
func Bot(c *gameconn.Client) []wire.Snapshot {
	acc := c.Accept()
	var seen []wire.Snapshot
	var seq uint32
	for snap := range c.Snapshots() {
		seen = append(seen, snap)
		var me, target *wire.PlayerState
		for i := range snap.Players {
			if snap.Players[i].Slot == acc.Slot {
				me = &snap.Players[i]
			}
		}
		for i := range snap.Players {
			p := &snap.Players[i]
			if p != me && p.Flags&wire.FlagConnected != 0 && (target == nil || Dist(me, p) < Dist(me, target)) {
				target = p
			}
		}
		seq++
		in := wire.Input{Seq: seq}
		if me != nil && target != nil {
			dx, dy := float64(target.X-me.X), float64(target.Y-me.Y)
			if d := math.Hypot(dx, dy); d > 4*wire.Q8 {
				step := float64(acc.MaxStep) / d
				in.DX, in.DY = int16(dx*step), int16(dy*step) // truncation keeps it ≤ MaxStep
			}
			a := math.Atan2(dy, dx)
			if a < 0 {
				a += 2 * math.Pi
			}
			in.Aim = uint16(a / (2 * math.Pi) * 65536)
			in.Fire = seq%uint32(max(acc.FireCooldown, 1)) == 0
		}
		if c.SendInput(in) != nil {
			break
		}
	}
	for range c.Snapshots() {
	}
	return seen
}

// Dist is the distance between two players (+Inf if either is nil).
func Dist(a, b *wire.PlayerState) float64 {
	if a == nil || b == nil {
		return math.Inf(1)
	}
	return math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y))
}
