package gameconn

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/proto/packet"
)

func udp(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The client answers its relay's CHALLENGE with HELLO_COOKIE (token and
// the cookie unchanged) and never sends its token to anyone else.
func TestClientAnswersRelayChallenge(t *testing.T) {
	relay, stranger, sock := udp(t), udp(t), udp(t)
	token := bytes.Repeat([]byte{9}, 147)
	f := newControlFilter(sock, relay.LocalAddr(), token)
	game := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 2048)
		n, _, err := f.ReadFrom(buf) // returns only on non-control traffic
		if err == nil {
			game <- buf[:n]
		}
	}()
	cookie := packet.Cookie{1, 2, 3, 23: 4}
	if _, err := stranger.WriteTo(packet.AppendChallenge(nil, cookie), sock.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.WriteTo(packet.AppendChallenge(nil, cookie), sock.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := relay.Read(buf)
	if err != nil {
		t.Fatalf("relay got no answer to its CHALLENGE: %v", err)
	}
	c, err := packet.ParseControl(buf[:n])
	if err != nil || c.Type != packet.TypeHelloCookie || c.Cookie != cookie || !bytes.Equal(c.Token, token) {
		t.Fatalf("answer %v (%v), want HELLO_COOKIE with the token and cookie", c.Type, err)
	}
	// The stranger's CHALLENGE got nothing: by the time game traffic from
	// the relay is handed to KCP, the stranger's socket is still empty.
	if _, err := relay.WriteTo([]byte("kcp"), sock.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-game:
		if string(g) != "kcp" {
			t.Fatalf("KCP got %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("game datagram not handed to KCP")
	}
	stranger.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := stranger.Read(buf); err == nil {
		t.Fatalf("the token went to a stranger: % x", buf[:n])
	}
}
