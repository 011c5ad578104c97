package natsauth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/cellgrid/cellgrid/proto/natscreds"
)

// AppAccountName is the name of the account every cellgrid subject and
// stream lives in.
const AppAccountName = "APP"

// Trust holds the private keys of a cellgrid NATS deployment: the
// operator, the system and APP accounts, one scoped DGS signing key per
// cell, and the secret routes and gateways authenticate with. Whoever
// holds it can mint any credential: keep it off the servers (only
// ServerAuth goes there).
type Trust struct {
	operator, system, app nkeys.KeyPair
	dgsSigners            map[string]nkeys.KeyPair // by cell id
	clusterSecret         string
}

type trustFile struct {
	Operator      string            `json:"operator_seed"`
	System        string            `json:"system_account_seed"`
	App           string            `json:"app_account_seed"`
	DGSSigners    map[string]string `json:"dgs_signer_seeds"`
	ClusterSecret string            `json:"cluster_secret"`
}

// NewTrust generates fresh keys with a DGS signing key for each cell.
func NewTrust(cells []string) (*Trust, error) {
	t := &Trust{dgsSigners: map[string]nkeys.KeyPair{}}
	var err error
	if t.operator, err = nkeys.CreateOperator(); err != nil {
		return nil, fmt.Errorf("natsauth: operator key: %w", err)
	}
	if t.system, err = nkeys.CreateAccount(); err != nil {
		return nil, fmt.Errorf("natsauth: system key: %w", err)
	}
	if t.app, err = nkeys.CreateAccount(); err != nil {
		return nil, fmt.Errorf("natsauth: app key: %w", err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("natsauth: cluster secret: %w", err)
	}
	t.clusterSecret = hex.EncodeToString(b)
	for _, c := range cells {
		if err := t.AddCell(c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// AddCell gives cell a DGS signing key (no-op when it has one).
func (t *Trust) AddCell(cell string) error {
	if !token(cell) {
		return fmt.Errorf("natsauth: bad cell id %q", cell)
	}
	if _, ok := t.dgsSigners[cell]; ok {
		return nil
	}
	kp, err := nkeys.CreateAccount()
	if err != nil {
		return fmt.Errorf("natsauth: dgs signer of %s: %w", cell, err)
	}
	t.dgsSigners[cell] = kp
	return nil
}

// LoadOrCreateTrust reads the trust stored at path (0600 JSON of seeds),
// or creates and stores one; cells without a DGS signing key get one. A
// dev stack keeps its trust so JetStream data (stored per account) stays
// readable across restarts.
func LoadOrCreateTrust(path string, cells []string) (*Trust, error) {
	var t *Trust
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if t, err = parseTrust(b); err != nil {
			return nil, fmt.Errorf("natsauth: %s: %w", path, err)
		}
		for _, c := range cells {
			if err := t.AddCell(c); err != nil {
				return nil, err
			}
		}
	case errors.Is(err, os.ErrNotExist):
		if t, err = NewTrust(cells); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("natsauth: %w", err)
	}
	if err := t.Save(path); err != nil {
		return nil, err
	}
	return t, nil
}

func parseTrust(b []byte) (*Trust, error) {
	var f trustFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	t := &Trust{dgsSigners: map[string]nkeys.KeyPair{}, clusterSecret: f.ClusterSecret}
	var err error
	for _, k := range []struct {
		dst  *nkeys.KeyPair
		seed string
	}{{&t.operator, f.Operator}, {&t.system, f.System}, {&t.app, f.App}} {
		if *k.dst, err = nkeys.FromSeed([]byte(k.seed)); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	for c, seed := range f.DGSSigners {
		if t.dgsSigners[c], err = nkeys.FromSeed([]byte(seed)); err != nil {
			return nil, fmt.Errorf("dgs signer %s: %w", c, err)
		}
	}
	if t.clusterSecret == "" {
		return nil, errors.New("no cluster secret")
	}
	return t, nil
}

// Save writes the trust to path with mode 0600.
func (t *Trust) Save(path string) error {
	seed := func(kp nkeys.KeyPair) string { s, _ := kp.Seed(); return string(s) }
	f := trustFile{Operator: seed(t.operator), System: seed(t.system), App: seed(t.app),
		DGSSigners: map[string]string{}, ClusterSecret: t.clusterSecret}
	for c, kp := range t.dgsSigners {
		f.DGSSigners[c] = seed(kp)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("natsauth: save trust: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("natsauth: save trust: %w", err)
	}
	return nil
}

// ServerAuth is what every NATS server of the supercluster needs: no
// private key, only JWTs and the route/gateway secret.
type ServerAuth struct {
	OperatorJWT   string
	SystemAccount string // public key
	AppAccount    string // public key
	// AccountJWTs maps account public key to its JWT (system and APP).
	AccountJWTs map[string]string
	// RouteUser and RoutePassword authenticate routes and gateways.
	RouteUser, RoutePassword string
}

// ServerAuth builds the operator and account JWTs. APP has JetStream
// enabled without limits and lists every cell's scoped DGS signing key
// with its permission template.
func (t *Trust) ServerAuth() (ServerAuth, error) {
	opub, _ := t.operator.PublicKey()
	spub, _ := t.system.PublicKey()
	apub, _ := t.app.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "cellgrid"
	oc.SystemAccount = spub
	ojwt, err := oc.Encode(t.operator)
	if err != nil {
		return ServerAuth{}, fmt.Errorf("natsauth: operator jwt: %w", err)
	}
	sc := jwt.NewAccountClaims(spub)
	sc.Name = "SYS"
	sjwt, err := sc.Encode(t.operator)
	if err != nil {
		return ServerAuth{}, fmt.Errorf("natsauth: system account jwt: %w", err)
	}
	ac := jwt.NewAccountClaims(apub)
	ac.Name = AppAccountName
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
	cells := make([]string, 0, len(t.dgsSigners))
	for c := range t.dgsSigners {
		cells = append(cells, c)
	}
	slices.Sort(cells)
	for _, c := range cells {
		pub, _ := t.dgsSigners[c].PublicKey()
		scope := jwt.NewUserScope()
		scope.Key = pub
		scope.Role = "dgs-" + c
		scope.Template = jwt.UserPermissionLimits{
			Permissions: DGSTemplate(c),
			Limits:      jwt.Limits{NatsLimits: jwt.NatsLimits{Subs: jwt.NoLimit, Data: jwt.NoLimit, Payload: jwt.NoLimit}},
		}
		ac.SigningKeys.AddScopedSigner(scope)
	}
	ajwt, err := ac.Encode(t.operator)
	if err != nil {
		return ServerAuth{}, fmt.Errorf("natsauth: app account jwt: %w", err)
	}
	return ServerAuth{
		OperatorJWT: ojwt, SystemAccount: spub, AppAccount: apub,
		AccountJWTs: map[string]string{spub: sjwt, apub: ajwt},
		RouteUser:   "cellgrid-route", RoutePassword: t.clusterSecret,
	}, nil
}

// Issue mints a credential for role, signed by the APP account (a DGS's
// by its cell's scoped signing key). ttl 0 means it does not expire.
func (t *Trust) Issue(role Role, ttl time.Duration) (natscreds.Creds, error) {
	if err := role.validate(); err != nil {
		return natscreds.Creds{}, err
	}
	if role.Kind == KindDGS {
		d, err := t.DGSIssuer(role.Cell)
		if err != nil {
			return natscreds.Creds{}, err
		}
		return d.Issue(role.ID, ttl)
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		return natscreds.Creds{}, fmt.Errorf("natsauth: user key: %w", err)
	}
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.Name = role.Name()
	uc.Permissions = role.Permissions()
	if ttl > 0 {
		uc.Expires = time.Now().Add(ttl).Unix()
	}
	ujwt, err := uc.Encode(t.app)
	if err != nil {
		return natscreds.Creds{}, fmt.Errorf("natsauth: user jwt %s: %w", role.Name(), err)
	}
	seed, _ := ukp.Seed()
	return natscreds.Creds{JWT: ujwt, Seed: string(seed)}, nil
}

// DGSIssuer returns what cell needs to mint its DGSs' credentials.
func (t *Trust) DGSIssuer(cell string) (DGSIssuer, error) {
	kp, ok := t.dgsSigners[cell]
	if !ok {
		return DGSIssuer{}, fmt.Errorf("natsauth: no DGS signing key for cell %q", cell)
	}
	seed, _ := kp.Seed()
	apub, _ := t.app.PublicKey()
	return DGSIssuer{Cell: cell, Account: apub, SignerSeed: string(seed)}, nil
}

// DGSIssuer mints credentials for a cell's game servers with the cell's
// scoped signing key: the servers give the user its permissions from the
// key's template, whatever the JWT says, so even a leaked signer cannot
// mint more than a DGS of that cell.
type DGSIssuer struct {
	Cell string
	// Account is the APP account's public key.
	Account string
	// SignerSeed is the cell's scoped DGS signing key (an account seed).
	SignerSeed string
}

// Issue mints DGS id's credential, expiring after ttl (0: never).
func (d DGSIssuer) Issue(id string, ttl time.Duration) (natscreds.Creds, error) {
	if err := DGS(d.Cell, id).validate(); err != nil {
		return natscreds.Creds{}, err
	}
	signer, err := nkeys.FromSeed([]byte(d.SignerSeed))
	if err != nil {
		return natscreds.Creds{}, fmt.Errorf("natsauth: dgs signer: %w", err)
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		return natscreds.Creds{}, fmt.Errorf("natsauth: user key: %w", err)
	}
	upub, _ := ukp.PublicKey()
	ujwt, err := jwt.IssueUserJWT(signer, d.Account, upub, id, ttl)
	if err != nil {
		return natscreds.Creds{}, fmt.Errorf("natsauth: dgs jwt %s: %w", id, err)
	}
	seed, _ := ukp.Seed()
	return natscreds.Creds{JWT: ujwt, Seed: string(seed)}, nil
}

// Zero reports whether d is unset (no DGS credentials to hand out).
func (d DGSIssuer) Zero() bool { return d.SignerSeed == "" }
