package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/devstack"
	"github.com/cellgrid/cellgrid/dgs"
	"github.com/cellgrid/cellgrid/internal/accesstoken"
	"github.com/cellgrid/cellgrid/internal/testenv"
	"github.com/cellgrid/cellgrid/proto/events"
	"github.com/cellgrid/cellgrid/proto/natscreds"
)

func TestMain(m *testing.M) {
	if os.Getenv(dgsChildEnv) == "1" {
		os.Exit(dgs.Main(os.Args[1:], os.Stderr))
	}
	os.Exit(testenv.Main(m))
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startStack runs a dev stack on a private database and returns it running.
func startStack(t *testing.T, cells ...string) *devstack.Stack {
	t.Helper()
	d := testenv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := devstack.Start(ctx, devstack.Config{
		DataDir: t.TempDir(), Cells: cells, DatabaseURL: d.URL, Ephemeral: true,
		DGSCommand: dgsCommand(t), DGSEnv: []string{dgsChildEnv + "=1"},
		DGSArgs:     []string{"--score-limit", "2", "--time-limit", "6s", "--wait-for-players", "20s"},
		FleetBuffer: 1,
	}, quietLog())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stack run: %v", err)
		}
	})
	return st
}

func ready(url string) error {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s/readyz: %d %s", url, resp.StatusCode, b)
	}
	return nil
}

func TestDevStackReady(t *testing.T) {
	st := startStack(t, "eu-west-1", "us-east-1")
	testenv.Eventually(t, 10*time.Second, func() error { return ready(st.GlobalURL) })
	for _, c := range st.Cells {
		testenv.Eventually(t, 10*time.Second, func() error { return ready(c.API) })
	}
	// Every NATS server of the stack refuses a client without credentials.
	for _, cluster := range []string{"global", "eu-west-1", "us-east-1"} {
		nc, err := nats.Connect(st.ClusterNATSURL(cluster), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatalf("%s: NATS accepted a client without credentials", cluster)
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("%s: want an authorization error, got %v", cluster, err)
		}
	}
}

// TestDevStackGuestLoginWalletProfile walks the global layer of a dev stack
// through the client SDK: guest login, the starting grant, the profile,
// and the JWKS a cell verifies with.
func TestDevStackGuestLoginWalletProfile(t *testing.T) {
	st := startStack(t, "eu-west-1")
	c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := c.LoginDevice(ctx, "device-0001-abcdef")
	if err != nil {
		t.Fatal(err)
	}
	if sess.PlayerID == "" || sess.AccessToken == "" || sess.RefreshToken == "" {
		t.Fatalf("login answer incomplete: %+v", sess)
	}
	var wallet struct {
		Balances map[string]int64 `json:"balances"`
	}
	if err := c.Get(ctx, st.GlobalURL+"/wallet", &wallet); err != nil {
		t.Fatal(err)
	}
	if wallet.Balances["gold"] != 1000 {
		t.Fatalf("starting grant: balances = %v, want gold 1000", wallet.Balances)
	}
	var prof map[string]any
	if err := c.Get(ctx, st.GlobalURL+"/player/"+sess.PlayerID+"/profile", &prof); err != nil {
		t.Fatal(err)
	}
	if _, hasEmail := prof["email"]; hasEmail || prof["username"] == nil {
		t.Fatalf("profile = %v", prof)
	}
	// A cell would verify the access token locally from the published JWKS.
	v := accesstoken.NewRemoteVerifier(ctx, st.Global().Issuer(), st.Global().JWKSURL())
	claims, err := v.Verify(ctx, sess.AccessToken)
	if err != nil || claims.PlayerID != sess.PlayerID {
		t.Fatalf("verify at a cell: %+v %v", claims, err)
	}
	// The same device logs in as the same player.
	again, err := c.LoginDevice(ctx, "device-0001-abcdef")
	if err != nil || again.PlayerID != sess.PlayerID {
		t.Fatalf("second login: %+v %v", again, err)
	}
}

// TestDrainCell is the SRE's drain: a request over NATS (as `cellgrid cell
// drain` sends it) makes the cell refuse new tickets with 503, the global
// topology shows it draining from its heartbeats, and undrain reverts both.
func TestDrainCell(t *testing.T) {
	st := startStack(t, "eu-west-1")
	ctx := context.Background()
	c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoginDevice(ctx, "drain-device-000001"); err != nil {
		t.Fatal(err)
	}
	// Drain needs the ops credential (what `cellgrid cell drain
	// --nats-creds` loads).
	ops, err := natscreds.LoadCreds(st.OpsCredsFile())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(st.ClusterNATSURL("global"), natscreds.Options(ops, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	request := func(verb string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			_, err := nc.Request(events.CellDrainSubject("eu-west-1"), []byte(verb), time.Second)
			return err
		})
	}
	topoState := func(want string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			cells, err := c.Topology(ctx)
			if err != nil {
				return err
			}
			if len(cells) != 1 || cells[0].State != want {
				return fmt.Errorf("topology %+v, want %s", cells, want)
			}
			return nil
		})
	}
	topoState("healthy")
	cells, _ := c.Topology(ctx)
	request("drain")
	topoState("draining")
	_, err = c.Join(ctx, cells[0], client.JoinRequest{GameMode: "duel"})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "cell_draining" || ae.RetryAfter == 0 {
		t.Fatalf("join while draining: %v", err)
	}
	request("undrain")
	topoState("healthy")
	if _, err := c.Join(ctx, cells[0], client.JoinRequest{GameMode: "duel"}); err != nil {
		t.Fatalf("join after undrain: %v", err)
	}
}
