package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/cellgrid/cellgrid/global/auth"
	"github.com/spf13/pflag"
)

// authFlags are the login flags shared by `cellgrid global` and `cellgrid dev`.
type authFlags struct {
	issuers    []string
	clientIDs  []string
	configFile string
	allowGuest bool
	keyHex     string
	proxies    []string
}

func (af *authFlags) register(f *pflag.FlagSet, allowGuestDefault bool) {
	f.StringArrayVar(&af.issuers, "oidc-issuer", nil, "accepted OIDC issuer URL (repeatable; pair each with --oidc-client-id)")
	f.StringArrayVar(&af.clientIDs, "oidc-client-id", nil, "client id (audience) for the --oidc-issuer at the same position")
	f.StringVar(&af.configFile, "auth-config", "", `JSON file: {"oidc_issuers":[{"issuer":"…","client_id":"…","algs":["RS256"]}]}`)
	f.BoolVar(&af.allowGuest, "allow-device-login", allowGuestDefault, "accept guest login by device id (development only)")
	f.StringArrayVar(&af.proxies, "trusted-proxy", nil, "CIDR of a load balancer in front of the global layer whose X-Forwarded-For the login rate limits believe (repeatable)")
	f.StringVar(&af.keyHex, "encryption-key", os.Getenv("CELLGRID_ENCRYPTION_KEY"), "64 hex chars: key sealing emails and signing keys at rest; env CELLGRID_ENCRYPTION_KEY")
}

// config builds the auth config. The encryption key may be left for the
// caller to fill (dev generates one in its data folder).
func (af *authFlags) config() (auth.Config, error) {
	var cfg auth.Config
	cfg.AllowDeviceLogin = af.allowGuest
	if len(af.issuers) != len(af.clientIDs) {
		return cfg, fmt.Errorf("--oidc-issuer given %d times but --oidc-client-id %d times", len(af.issuers), len(af.clientIDs))
	}
	for i := range af.issuers {
		cfg.OIDCIssuers = append(cfg.OIDCIssuers, auth.OIDCIssuer{Issuer: af.issuers[i], ClientID: af.clientIDs[i]})
	}
	if af.configFile != "" {
		b, err := os.ReadFile(af.configFile)
		if err != nil {
			return cfg, fmt.Errorf("--auth-config: %w", err)
		}
		var file struct {
			OIDCIssuers []struct {
				Issuer   string   `json:"issuer"`
				ClientID string   `json:"client_id"`
				Algs     []string `json:"algs"`
			} `json:"oidc_issuers"`
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return cfg, fmt.Errorf("--auth-config %s: %w", af.configFile, err)
		}
		for _, o := range file.OIDCIssuers {
			cfg.OIDCIssuers = append(cfg.OIDCIssuers, auth.OIDCIssuer{Issuer: o.Issuer, ClientID: o.ClientID, Algs: o.Algs})
		}
	}
	for _, p := range af.proxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return cfg, fmt.Errorf("--trusted-proxy %q: %w", p, err)
		}
		cfg.RateLimits.TrustedProxies = append(cfg.RateLimits.TrustedProxies, pfx)
	}
	if af.keyHex != "" {
		k, err := hex.DecodeString(af.keyHex)
		if err != nil || len(k) != 32 {
			return cfg, fmt.Errorf("--encryption-key: want 64 hex characters (32 bytes)")
		}
		cfg.EncryptionKey = k
	}
	return cfg, nil
}
