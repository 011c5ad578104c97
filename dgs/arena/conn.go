package arena

import (
	"bufio"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/kcp-go/v5"

	"github.com/cellgrid/cellgrid/proto/wire"
)

// conn is one player's KCP stream after a valid JOIN. Its reader goroutine
// (serveStream) queues inputs; its writer goroutine drains out.
type conn struct {
	srv  *Server
	sess *kcp.UDPSession
	addr netip.AddrPort
	slot int

	// inputs: reader → match goroutine; full → the oldest is dropped.
	inputs chan wire.Input
	// out: match goroutine → writer; full → the oldest is dropped.
	out chan []byte

	finish     chan struct{} // closed by the match: send what is queued, linger, close
	finishOnce sync.Once
	closed     chan struct{} // closed by the reader when it ends
	lingerTill atomic.Int64  // unix nanos; 0 while not finishing
}

// IdleTimeout of a stream: a client that sends nothing for this long is
// dropped (KCP has no keepalive of its own; clients send an input per tick).
const idleTimeout = 10 * time.Second

// lingerQuiet ends a lingering stream once its peer has sent nothing for
// this long (it has END and stopped).
const lingerQuiet = 300 * time.Millisecond

// readLoop reads INPUT frames until the stream fails, idles, lingers out, or
// breaks the protocol.
func (c *conn) readLoop(r *bufio.Reader, buf []byte) {
	for {
		deadline := time.Now().Add(idleTimeout)
		if l := c.lingerTill.Load(); l != 0 {
			deadline = time.Now().Add(lingerQuiet)
			if end := time.Unix(0, l); end.Before(deadline) {
				deadline = end
			}
		}
		_ = c.sess.SetReadDeadline(deadline)
		frame, err := wire.ReadFrame(r, buf)
		if err != nil {
			return
		}
		if wire.Type(frame[0]) != wire.TypeInput {
			c.srv.stats.MalformedStreams.Add(1)
			return
		}
		in, err := wire.DecodeInput(frame[1:])
		if err != nil {
			c.srv.stats.MalformedStreams.Add(1)
			return
		}
		c.pushInput(in)
	}
}

// pushInput queues in, dropping the oldest queued input when full. Only the
// reader sends, so after one receive there is room.
func (c *conn) pushInput(in wire.Input) {
	for {
		select {
		case c.inputs <- in:
			return
		default:
		}
		select {
		case <-c.inputs:
			c.srv.stats.InputsDropped.Add(1)
		default:
		}
	}
}

// send queues a frame for the writer, dropping the oldest queued frame when
// full (a newer snapshot supersedes it). Only the match goroutine sends.
func (c *conn) send(f []byte) {
	for {
		select {
		case c.out <- f:
			return
		default:
		}
		select {
		case <-c.out:
			c.srv.stats.FramesDropped.Add(1)
		default:
		}
	}
}

// end asks the writer to flush what is queued, then let the stream linger
// and close. Safe to call twice.
func (c *conn) end() { c.finishOnce.Do(func() { close(c.finish) }) }

func (c *conn) writeLoop() {
	defer c.srv.wg.Done()
	for {
		select {
		case f := <-c.out:
			if !c.write(f) {
				return
			}
		case <-c.finish:
			for {
				select {
				case f := <-c.out:
					if !c.write(f) {
						return
					}
					continue
				default:
				}
				break
			}
			// Linger while the peer is still talking, at most Linger: a
			// client that has END stops sending, one whose END was lost
			// keeps sending inputs while KCP retransmits END. (A fixed
			// 500 ms linger closed streams on lossy paths with END still
			// in flight, and the client waited for it until its timeout.)
			now := time.Now()
			c.lingerTill.Store(now.Add(c.srv.cfg.Linger).UnixNano())
			_ = c.sess.SetReadDeadline(now.Add(lingerQuiet))
			return
		case <-c.closed:
			return
		}
	}
}

// write sends one frame; on failure it closes the session, which ends the
// reader.
func (c *conn) write(f []byte) bool {
	_ = c.sess.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	if _, err := c.sess.Write(f); err != nil {
		c.sess.Close()
		return false
	}
	return true
}
