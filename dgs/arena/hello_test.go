package arena

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/connecttoken"
	"github.com/cellgrid/cellgrid/proto/packet"
)

// A token binds once per DGS: its HELLO repeated from the admitted address
// is idempotent (also after the player left and comes back through the
// same relay upstream), from another address it is a replay and admits
// nothing. A fresh token for the player may bind a new address.
func TestHelloReplayGuard(t *testing.T) {
	f := newFixture(t, Config{}, 2)
	f.start()
	p0 := f.players[0]
	tok := f.token(p0, nil)
	a := netip.MustParseAddrPort("127.0.0.1:40001")
	b := netip.MustParseAddrPort("127.0.0.1:40002")
	admittedAs := func(ap netip.AddrPort) (uuid.UUID, bool) {
		e, ok := f.srv.adm.lookup(ap)
		return e.player, ok
	}

	f.srv.verifyHello(a, tok)
	if p, ok := admittedAs(a); !ok || p != p0 {
		t.Fatalf("first HELLO: admitted %v as %v", ok, p)
	}
	f.srv.verifyHello(a, tok)
	f.srv.adm.revoke(a) // the player's stream ended; it comes back
	f.srv.verifyHello(a, tok)
	if _, ok := admittedAs(a); !ok {
		t.Fatal("the token's own address was refused on its return")
	}
	f.srv.verifyHello(b, tok)
	if _, ok := admittedAs(b); ok {
		t.Fatal("a token admitted from one address admitted a second address")
	}
	if n := f.srv.Stats().HellosReplayed.Load(); n != 1 {
		t.Fatalf("HellosReplayed = %d, want 1", n)
	}
	f.srv.verifyHello(b, f.token(p0, nil))
	if p, ok := admittedAs(b); !ok || p != p0 {
		t.Fatal("a fresh token for the player was refused")
	}
}

// Forged HELLOs from one source are verified at most at that source's rate
// (the rest are dropped before any signature work, and counted), and an
// expired token from an unknown address costs no signature check at all;
// another source still gets in.
func TestHelloRateLimitedPerSource(t *testing.T) {
	f := newFixture(t, Config{HelloPerSource: 5}, 2) // burst 10
	f.start()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	sid := uuid.MustParse(f.alloc.SessionID)
	forged, err := connecttoken.Mint(otherKey, connecttoken.Token{
		SessionID: sid, PlayerID: f.players[0], ExpiresAt: time.Now().Add(time.Minute),
		ServerAddr: f.srv.Addr().(*net.UDPAddr).AddrPort(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Same key id as the match's key, bad signature: only Ed25519 finds out.
	badSig := f.token(f.players[0], nil)
	badSig[len(badSig)-1] ^= 1
	expired := f.token(f.players[0], func(tk *connecttoken.Token) { tk.ExpiresAt = time.Now().Add(-time.Minute) })

	attacker, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	const flood = 3000
	start := time.Now()
	for i := range flood {
		tok := [][]byte{forged, badSig, expired}[i%3]
		if _, err := attacker.WriteTo(packet.AppendHello(nil, tok), f.addr); err != nil {
			t.Fatal(err)
		}
	}
	st := f.srv.Stats()
	testenv.Eventually(t, 10*time.Second, func() error {
		st = f.srv.Stats()
		// Loopback drops part of a burst when the socket buffer fills.
		if st.HellosSeen.Load() < flood/6 {
			return fmt.Errorf("DGS saw %d of %d HELLOs", st.HellosSeen.Load(), flood)
		}
		return nil
	})
	elapsed := time.Since(start)
	// A token bucket of rate 5/s and burst 10 lets at most 10+5·elapsed
	// through; of those, only the bad-signature third reaches Ed25519.
	allowed := st.HellosSeen.Load() - st.HellosLimited.Load()
	if maxAllowed := 10 + int64(5*elapsed.Seconds()) + 1; allowed > maxAllowed {
		t.Fatalf("%d HELLOs from one source passed the limit in %v, want ≤ %d", allowed, elapsed, maxAllowed)
	}
	if v := st.HellosVerified.Load(); v > (allowed+2)/3+1 {
		t.Fatalf("%d signature checks for %d HELLOs passed (only the bad-signature third should reach Ed25519)", v, allowed)
	}
	if st.HellosLimited.Load() == 0 {
		t.Fatal("no HELLO counted as limited")
	}

	// Another source is not limited by the flood.
	ctx := t.Context()
	if _, err := f.dial(ctx, f.token(f.players[1], nil)); err != nil {
		t.Fatalf("legitimate dial during the flood's aftermath: %v", err)
	}
}
