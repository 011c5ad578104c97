package natsembed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/natsauth"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/natscreds"
)

func startAuthed(t *testing.T, names []string, tlsCfg *TLS) *SuperCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc, err := StartSuperClusterWith(ctx, t.TempDir(), names, nil, Options{TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Shutdown)
	return sc
}

func TestEveryServerRefusesAClientWithoutCredentials(t *testing.T) {
	sc := startAuthed(t, []string{"global", "eu-west-1", "us-east-1"}, nil)
	for _, s := range sc.Servers {
		nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatalf("%s: a client without credentials connected", s.Cluster())
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("%s: want an authorization error, got %v", s.Cluster(), err)
		}
		// A credential signed by another deployment's keys is refused too.
		other, _ := natsauth.NewTrust([]string{"eu-west-1"})
		creds, _ := other.Issue(natsauth.Admin(), 0)
		if nc, err := s.ConnectAs("stranger", creds); err == nil {
			nc.Close()
			t.Fatalf("%s: a foreign credential connected", s.Cluster())
		}
		// The deployment's own credential works.
		nc, err = s.Connect("admin")
		if err != nil {
			t.Fatalf("%s: admin: %v", s.Cluster(), err)
		}
		nc.Close()
	}
}

// violations collects the permission errors the server sends a connection.
func violations(t *testing.T, s *Server, name string, creds natscreds.Creds) (*nats.Conn, chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts := append([]nats.Option{nats.Name(name), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		errs <- err
	})}, natscreds.Options(creds, s.CA())...)
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func wantViolation(t *testing.T, errs chan error, subject string) {
	t.Helper()
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "Permissions Violation") || !strings.Contains(err.Error(), subject) {
			t.Fatalf("publish to %s: want a permissions violation, got %v", subject, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("publish to %s: no permissions violation", subject)
	}
}

func TestDGSCredentialIsConfinedToItsOwnSubjects(t *testing.T) {
	sc := startAuthed(t, []string{"global", "eu-west-1"}, nil)
	eu := sc.Server("eu-west-1")
	admin, err := eu.Connect("watcher")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	seen, _ := admin.SubscribeSync(">")
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	issuer, err := sc.Trust.DGSIssuer("eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := issuer.Issue("eu-west-1-aaaa", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dgs, errs := violations(t, eu, "dgs", creds)

	for _, subj := range []string{
		events.CellHeartbeatSubject("eu-west-1"),
		events.CellDrainSubject("eu-west-1"),
		events.MatchResultSubject("eu-west-1", "eu-west-1-bbbb"), // another DGS's result
		events.DGSHealthSubject("eu-west-1", "eu-west-1-bbbb"),   // another DGS's heartbeat
		events.MatchResultSubject("us-east-1", "eu-west-1-aaaa"), // another cell's stream
		events.RevocationSubject,
	} {
		if err := dgs.Publish(subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, subj)
	}
	// Its own subjects go through.
	own := events.DGSHealthSubject("eu-west-1", "eu-west-1-aaaa")
	if err := dgs.Publish(own, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	m, err := seen.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != own {
		t.Fatalf("first message through is %s, want %s: a refused publish was delivered", m.Subject, own)
	}
	// It cannot listen to another DGS's allocations either.
	if _, err := dgs.SubscribeSync("cellgrid.eu-west-1.dgs.eu-west-1-bbbb.allocate"); err != nil {
		t.Fatal(err)
	}
	_ = dgs.Flush()
	wantViolation(t, errs, "eu-west-1-bbbb.allocate")

	// JetStream: the DGS publishes its own result into the cell's stream
	// (created by the admin here, by the cell in a real stack).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ajs, _ := jetstream.New(admin)
	if err := events.EnsureMatchStream(ctx, ajs, "eu-west-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	djs, _ := jetstream.New(dgs)
	if _, err := djs.Publish(ctx, events.MatchResultSubject("eu-west-1", "eu-west-1-aaaa"), []byte(`{}`)); err != nil {
		t.Fatalf("own result: %v", err)
	}
	// …but may not delete the stream.
	if err := djs.DeleteStream(ctx, events.MatchStream("eu-west-1")); err == nil {
		t.Fatal("a DGS deleted the match stream")
	}
}

func TestOnlyOpsMayDrainAndOnlyTheCellMayAnnounceItself(t *testing.T) {
	sc := startAuthed(t, []string{"global", "eu-west-1"}, nil)
	eu := sc.Server("eu-west-1")
	issue := func(r natsauth.Role) natscreds.Creds {
		c, err := sc.Trust.Issue(r, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	other, errs := violations(t, eu, "cell us", issue(natsauth.Cell("us-east-1")))
	for _, subj := range []string{events.CellDrainSubject("eu-west-1"), events.CellHeartbeatSubject("eu-west-1")} {
		_ = other.Publish(subj, nil)
		wantViolation(t, errs, subj)
	}
	// (The global layer may: its ops console drains for humans holding
	// the ops role.) A relay may not.
	relay, rerrs := violations(t, sc.Server("global"), "relay", issue(natsauth.Relay("eu-west-1")))
	_ = relay.Publish(events.CellDrainSubject("eu-west-1"), nil)
	wantViolation(t, rerrs, events.CellDrainSubject("eu-west-1"))

	// The cell answers its ops; ops reach it from the global cluster.
	cellNC, err := eu.ConnectAs("cell", issue(natsauth.Cell("eu-west-1")))
	if err != nil {
		t.Fatal(err)
	}
	defer cellNC.Close()
	if _, err := cellNC.Subscribe(events.CellDrainSubject("eu-west-1"), func(m *nats.Msg) { _ = m.Respond([]byte("draining")) }); err != nil {
		t.Fatal(err)
	}
	_ = cellNC.Flush()
	ops, err := sc.Server("global").ConnectAs("ops", issue(natsauth.Ops()))
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := ops.Request(events.CellDrainSubject("eu-west-1"), []byte("drain"), time.Second)
		if err == nil && string(m.Data) == "draining" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ops drain request: %v", err)
		}
	}
}

// testCA makes a CA and a certificate for 127.0.0.1 valid for server and
// client use.
func testCA(t *testing.T) *TLS {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cellgrid test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &TLS{
		Server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		CA:     pool,
	}
}

func TestTLSSuperCluster(t *testing.T) {
	sc := startAuthed(t, []string{"global", "eu-west-1"}, testCA(t))
	// Gateways came up over TLS (StartSuperClusterWith waited for them).
	eu, err := sc.Server("eu-west-1").Connect("eu")
	if err != nil {
		t.Fatal(err)
	}
	defer eu.Close()
	if _, err := eu.TLSConnectionState(); err != nil {
		t.Fatalf("client connection is not TLS: %v", err)
	}
	g, err := sc.Server("global").Connect("global")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	sub, _ := g.SubscribeSync("x.tls")
	_ = g.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = eu.Publish("x.tls", []byte("hi"))
		if _, err := sub.NextMsg(200 * time.Millisecond); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message did not cross the TLS gateway")
		}
	}
	// Without trusting the CA a client cannot connect, credential or not.
	creds, _ := sc.Trust.Issue(natsauth.Admin(), 0)
	opts := append([]nats.Option{nats.MaxReconnects(0)}, natscreds.Options(creds, nil)...)
	if nc, err := nats.Connect(sc.Server("global").ClientURL(), opts...); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the server's CA")
	}
}
