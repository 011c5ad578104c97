// Package wire is the cellgrid game protocol between a game client and a
// dedicated game server, carried over one KCP stream per player (end to end
// through the relay, which never decodes it). docs/protocol.md describes it
// byte by byte and testdata/vectors.json holds frames beside their decoding.
//
// # Framing
//
// The KCP stream carries frames:
//
//	0  2 bytes  length n of what follows (big endian), 1 ≤ n ≤ MaxFrame
//	2  1 byte   message Type
//	3  n-1      body, by type (all integers big endian)
//
// # Messages
//
//	JOIN     c→s  connect token, exactly connecttoken.Size (147) bytes.
//	              Must be the first frame of the stream.
//	ACCEPT   s→c  slot u8, tick rate u16, arena width i32, arena height i32,
//	              max step u16, fire cooldown u16 (ticks), player count u8,
//	              then count × 16-byte player id (the slot order)
//	INPUT    c→s  seq u32, dx i16, dy i16, fire u8 (0|1), aim u16
//	SNAPSHOT s→c  tick u32, ack seq u32 (last input seq processed for the
//	              receiving player), count u8, then count × entry:
//	              slot u8, x i32, y i32, health u16, score i32, flags u8
//	END      s→c  reason u8, winner slot u8 (NoWinner on a draw), count u8,
//	              then count × (slot u8, score i32)
//	REFUSE   s→c  reason u8; the server closes the stream afterwards
//
// Distances are fixed point Q8 (1/256 of an arena unit): positions are i32,
// a move (dx, dy) is the displacement requested for one tick. Aim is an angle
// in 1/65536 of a turn, counter-clockwise from +x. Every decoder is strict:
// lengths are exact, booleans are 0 or 1, counts match the bytes, so that a
// decoded message re-encodes to the same bytes (the fuzz test checks it).
//
// The Go client is client/gameconn; the sample server is dgs/arena.
package wire
