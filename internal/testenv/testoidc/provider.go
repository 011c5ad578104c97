package testoidc

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OIDCProvider is a real OpenID provider (zitadel/oidc's example OP with
// its in-memory storage) served over HTTP on a loopback port for one test.
// IDToken runs a complete authorization-code flow against it, driving its
// login form, so the token is one the provider itself issued and signed
// (RS256, key published at its jwks_uri). ForgedIDToken makes the bad tokens
// that a verifier must refuse.
type OIDCProvider struct {
	Issuer       string // http://127.0.0.1:port, iss of its ID tokens
	ClientID     string // aud of its ID tokens
	ClientSecret string
	RedirectURI  string // registered with the client; never actually served

	users   *oidcUsers
	storage *storage.Storage
	srv     *httptest.Server
}

// NewOIDCProvider starts a provider with one confidential web client. It is
// stopped at the end of the test.
func NewOIDCProvider(t testing.TB) *OIDCProvider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	p := &OIDCProvider{
		Issuer:       "http://" + srv.Listener.Addr().String(),
		ClientID:     "cellgrid-test-" + randHex(4),
		ClientSecret: randHex(16),
		RedirectURI:  "http://localhost:9999/auth/callback",
		users:        &oidcUsers{byID: map[string]*storage.User{}},
		srv:          srv,
	}
	clients := map[string]*storage.Client{
		p.ClientID: storage.WebClient(p.ClientID, p.ClientSecret, p.RedirectURI),
	}
	p.storage = storage.NewStorageWithClients(p.users, clients)
	srv.Config.Handler = exampleop.SetupServer(p.Issuer, claimsInIDToken{p.storage}, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// User registers (once) and returns the provider's user called username:
// subject "sub-<username>-<random>", email <username>@players.test (verified).
func (p *OIDCProvider) User(username string) *storage.User {
	return p.users.add(username)
}

// IDToken logs username in through the provider's authorization-code flow
// (authorize → login form → callback → token endpoint) and returns the ID
// token the provider issued (scopes openid profile email).
func (p *OIDCProvider) IDToken(t testing.TB, username string) string {
	t.Helper()
	tok, err := p.codeFlow(username)
	if err != nil {
		t.Fatalf("testenv: OIDC flow for %s: %v", username, err)
	}
	return tok
}

var loginFormID = regexp.MustCompile(`name="id" value="([^"]*)"`)

func (p *OIDCProvider) codeFlow(username string) (string, error) {
	u := p.users.add(username)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var disc struct {
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
	}
	if err := getJSON(c, p.Issuer+"/.well-known/openid-configuration", &disc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	state, nonce := randHex(8), randHex(8)
	q := url.Values{
		"client_id": {p.ClientID}, "redirect_uri": {p.RedirectURI}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {state}, "nonce": {nonce},
	}
	// authorize → redirect to the login UI
	loc, err := redirect(c, http.MethodGet, disc.AuthorizationEndpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	// login page: read the auth request id from the form
	page, err := get(c, p.resolve(loc))
	if err != nil {
		return "", fmt.Errorf("login page: %w", err)
	}
	m := loginFormID.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("login page has no request id: %.200s", page)
	}
	// submit the form → redirect to the OP's callback → redirect to the client with a code
	loc, err = redirect(c, http.MethodPost, p.Issuer+"/login/username", url.Values{
		"id": {html.UnescapeString(m[1])}, "username": {u.Username}, "password": {u.Password},
	})
	if err != nil {
		return "", fmt.Errorf("login form: %w", err)
	}
	loc, err = redirect(c, http.MethodGet, p.resolve(loc), nil)
	if err != nil {
		return "", fmt.Errorf("auth callback: %w", err)
	}
	cb, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, p.RedirectURI) {
		return "", fmt.Errorf("unexpected redirect %q", loc)
	}
	if cb.Query().Get("state") != state {
		return "", fmt.Errorf("state mismatch in %q", loc)
	}
	code := cb.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("no code in %q", loc)
	}
	// token endpoint
	req, _ := http.NewRequest(http.MethodPost, disc.TokenEndpoint, strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {p.RedirectURI},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token: %s: %s", resp.Status, body)
	}
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.IDToken == "" {
		return "", fmt.Errorf("token response without id_token: %s", body)
	}
	return tr.IDToken, nil
}

func (p *OIDCProvider) resolve(loc string) string {
	if strings.HasPrefix(loc, "/") {
		return p.Issuer + loc
	}
	return loc
}

// Forgery names a way an ID token can be bad.
type Forgery int

const (
	// ForgeNone signs correct claims with the provider's own key and kid:
	// a verifier must ACCEPT it (the control that proves the others fail for
	// their stated reason).
	ForgeNone           Forgery = iota
	ForgeExpired                // exp an hour ago, otherwise valid
	ForgeWrongAudience          // aud is another client
	ForgeWrongIssuer            // iss is an issuer nobody configured
	ForgeAlgNone                // alg "none", empty signature
	ForgeHS256PublicKey         // HS256 with the provider's public key (PEM) as the HMAC secret
	ForgeUnknownKID             // the provider's key, a kid it never published
	ForgeForeignKey             // the provider's kid, signed by another RSA key
	ForgeTampered               // a real ID token from the flow with its payload's sub changed
)

func (f Forgery) String() string {
	return [...]string{"valid", "expired", "wrong_audience", "wrong_issuer", "alg_none",
		"hs256_public_key", "unknown_kid", "foreign_key", "tampered_payload"}[f]
}

// Forgeries lists every bad kind (not ForgeNone).
var Forgeries = []Forgery{ForgeExpired, ForgeWrongAudience, ForgeWrongIssuer, ForgeAlgNone,
	ForgeHS256PublicKey, ForgeUnknownKID, ForgeForeignKey, ForgeTampered}

// Claims returns the claims the provider would put in username's ID token.
func (p *OIDCProvider) Claims(username string) map[string]any {
	u := p.users.add(username)
	now := time.Now()
	return map[string]any{
		"iss": p.Issuer, "sub": u.ID, "aud": []string{p.ClientID}, "azp": p.ClientID,
		"iat": now.Unix(), "auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"preferred_username": u.Username, "email": u.Email, "email_verified": true,
	}
}

// SignClaims signs claims as the provider does (RS256, its key and kid).
func (p *OIDCProvider) SignClaims(t testing.TB, claims map[string]any) string {
	t.Helper()
	key, kid := p.signingKey(t)
	return compactJWS(t, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, func(in []byte) []byte {
		return rsaSign(t, key, in)
	})
}

// ForgedIDToken returns an ID token for username that is bad in way f
// (or, for ForgeNone, good).
func (p *OIDCProvider) ForgedIDToken(t testing.TB, username string, f Forgery) string {
	t.Helper()
	claims := p.Claims(username)
	key, kid := p.signingKey(t)
	rs256 := func(kid string, k *rsa.PrivateKey) string {
		return compactJWS(t, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, func(in []byte) []byte {
			return rsaSign(t, k, in)
		})
	}
	switch f {
	case ForgeNone:
		return rs256(kid, key)
	case ForgeExpired:
		claims["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		claims["exp"] = time.Now().Add(-time.Hour).Unix()
		return rs256(kid, key)
	case ForgeWrongAudience:
		claims["aud"] = []string{"some-other-client"}
		claims["azp"] = "some-other-client"
		return rs256(kid, key)
	case ForgeWrongIssuer:
		claims["iss"] = "https://evil.example"
		return rs256(kid, key)
	case ForgeAlgNone:
		return compactJWS(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, func([]byte) []byte { return nil })
	case ForgeHS256PublicKey:
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		return compactJWS(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "JWT"}, claims, func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		})
	case ForgeUnknownKID:
		return rs256("unknown-"+randHex(4), key)
	case ForgeForeignKey:
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return rs256(kid, other)
	case ForgeTampered:
		real := p.IDToken(t, username)
		parts := strings.Split(real, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		c["sub"] = p.users.add(username + "_victim").ID
		parts[1] = b64json(t, c)
		return strings.Join(parts, ".")
	}
	t.Fatalf("testenv: unknown forgery %d", f)
	return ""
}

func (p *OIDCProvider) signingKey(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	sk, err := p.storage.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key, ok := sk.Key().(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("testenv: provider signing key is %T", sk.Key())
	}
	return key, sk.ID()
}

func compactJWS(t testing.TB, header, claims map[string]any, sign func([]byte) []byte) string {
	in := b64json(t, header) + "." + b64json(t, claims)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

func b64json(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func rsaSign(t testing.TB, k *rsa.PrivateKey, in []byte) []byte {
	h := sha256.Sum256(in)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// claimsInIDToken makes the provider put the profile and email claims in
// the ID token itself, as Keycloak, Google or Cognito do (the example
// clients only serve them from the userinfo endpoint).
type claimsInIDToken struct{ *storage.Storage }

func (s claimsInIDToken) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return userinfoInIDToken{c}, nil
}

type userinfoInIDToken struct{ op.Client }

func (userinfoInIDToken) IDTokenUserinfoClaimsAssertion() bool { return true }

// oidcUsers is the provider's user store (storage.UserStore), filled on
// demand by username.
type oidcUsers struct {
	mu sync.Mutex
	// mu guards byID.
	byID map[string]*storage.User
}

func (s *oidcUsers) add(username string) *storage.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.byID {
		if u.Username == username {
			return u
		}
	}
	u := &storage.User{
		ID:            "sub-" + username + "-" + randHex(4),
		Username:      username,
		Password:      randHex(12),
		FirstName:     username,
		LastName:      "Tester",
		Email:         strings.ToLower(username) + "@players.test",
		EmailVerified: true,
	}
	s.byID[u.ID] = u
	return u
}

func (s *oidcUsers) GetUserByID(id string) *storage.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

func (s *oidcUsers) GetUserByUsername(username string) *storage.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.byID {
		if u.Username == username {
			return u
		}
	}
	return nil
}

func (s *oidcUsers) ExampleClientID() string { return "service" }

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}

func getJSON(c *http.Client, u string, v any) error {
	body, err := get(c, u)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(body), v)
}

func get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, b)
	}
	return string(b), nil
}

// redirect sends one request and returns the Location it redirects to.
func redirect(c *http.Client, method, u string, form url.Values) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return "", fmt.Errorf("%s %s: %s, want a redirect: %.300s", method, u, resp.Status, b)
	}
	return resp.Header.Get("Location"), nil
}
