package natscreds

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// Creds is one NATS user's credential: its JWT and its nkey seed.
type Creds struct {
	JWT  string
	Seed string
}

// Zero reports whether c is empty (connect without credentials).
func (c Creds) Zero() bool { return c.JWT == "" }

// Format returns c in the standard .creds file format (what `nsc` writes
// and nats.UserCredentials reads).
func (c Creds) Format() ([]byte, error) {
	b, err := jwt.FormatUserConfig(c.JWT, []byte(c.Seed))
	if err != nil {
		return nil, fmt.Errorf("natscreds: format creds: %w", err)
	}
	return b, nil
}

// ParseCreds reads the .creds format.
func ParseCreds(b []byte) (Creds, error) {
	j, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return Creds{}, fmt.Errorf("natscreds: creds jwt: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(b)
	if err != nil {
		return Creds{}, fmt.Errorf("natscreds: creds seed: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return Creds{}, fmt.Errorf("natscreds: creds seed: %w", err)
	}
	return Creds{JWT: j, Seed: string(seed)}, nil
}

// LoadCreds reads a credential given as a file path or, when v holds the
// .creds text itself (it starts with "-----BEGIN"), as is. An empty v
// means no credential. Launchers pass a DGS its credential in the
// environment this way, so no file is left behind.
func LoadCreds(v string) (Creds, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Creds{}, nil
	}
	if strings.HasPrefix(v, "-----BEGIN") {
		return ParseCreds([]byte(v))
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return Creds{}, fmt.Errorf("natscreds: read creds: %w", err)
	}
	return ParseCreds(b)
}

// Name returns the user name in c's JWT ("" when unreadable).
func (c Creds) Name() string {
	uc, err := jwt.DecodeUserClaims(c.JWT)
	if err != nil {
		return ""
	}
	return uc.Name
}

// Options are the nats.Options to connect with c (and with TLS trusting
// tlsCA when it is not nil): the user JWT and seed, and the inbox prefix
// the role's permissions allow. An empty c returns only the TLS option.
func Options(c Creds, tlsCA *x509.CertPool) []nats.Option {
	var opts []nats.Option
	if !c.Zero() {
		opts = append(opts, nats.UserJWTAndSeed(c.JWT, c.Seed))
		if name := c.Name(); name != "" {
			opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(name)))
		}
	}
	if tlsCA != nil {
		opts = append(opts, nats.Secure(&tls.Config{RootCAs: tlsCA, MinVersion: tls.VersionTLS12}))
	}
	return opts
}

// LoadCA reads a PEM bundle of CA certificates ("" returns nil).
func LoadCA(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("natscreds: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("natscreds: CA file holds no PEM certificate")
	}
	return pool, nil
}

// InboxPrefix is the reply-subject prefix a connection of the named user
// must use (nats.CustomInboxPrefix): its permissions only let it subscribe
// there, so no user can read another's replies.
func InboxPrefix(name string) string { return "_INBOX." + name }
