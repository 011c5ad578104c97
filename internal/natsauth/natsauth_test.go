package natsauth

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/cellgrid/cellgrid/proto/natscreds"
)

func TestTrustRoundTripAndCreds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trust.json")
	t1, err := LoadOrCreateTrust(path, []string{"eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trust file: %v %v", fi, err)
	}
	t2, err := LoadOrCreateTrust(path, []string{"eu-west-1", "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := t1.ServerAuth()
	a2, _ := t2.ServerAuth()
	if a1.AppAccount != a2.AppAccount || a1.RoutePassword != a2.RoutePassword {
		t.Fatal("reloaded trust has other keys")
	}
	if _, err := t2.DGSIssuer("us-east-1"); err != nil {
		t.Fatalf("added cell: %v", err)
	}
	ac, err := jwt.DecodeAccountClaims(a2.AccountJWTs[a2.AppAccount])
	if err != nil || len(ac.SigningKeys) != 2 || !ac.Limits.IsJSEnabled() {
		t.Fatalf("app account: %+v %v", ac, err)
	}

	c, err := t2.Issue(Cell("eu-west-1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.Format()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "c.creds")
	_ = os.WriteFile(file, text, 0o600)
	for _, v := range []string{string(text), file} {
		got, err := natscreds.LoadCreds(v)
		if err != nil || got != c {
			t.Fatalf("natscreds.LoadCreds(%.20q): %v", v, err)
		}
	}
	if got, err := natscreds.LoadCreds(""); err != nil || !got.Zero() {
		t.Fatalf("empty: %v %v", got, err)
	}
	if c.Name() != "cell_eu-west-1" {
		t.Fatalf("name %q", c.Name())
	}
	uc, _ := jwt.DecodeUserClaims(c.JWT)
	if uc.Expires == 0 || !uc.Permissions.Pub.Allow.Contains("cellgrid.cells.eu-west-1.heartbeat") || uc.Permissions.Pub.Allow.Contains("cellgrid.cells.*.drain") {
		t.Fatalf("cell permissions: %+v", uc.Permissions)
	}
}

func TestRolesRefuseWildcardIDs(t *testing.T) {
	tr, err := NewTrust([]string{"eu"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Role{Cell("*"), Cell("a.b"), DGS("eu", ">"), DGS("eu", ""), Relay(""), {Kind: "root"}} {
		if _, err := tr.Issue(r, 0); err == nil {
			t.Errorf("issued %+v", r)
		}
	}
	d, _ := tr.DGSIssuer("eu")
	if _, err := d.Issue("eu.x", 0); err == nil {
		t.Error("issued a DGS id with a dot")
	}
}
