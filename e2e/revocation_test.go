package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/client"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

// TestLogoutRevokesAtTheCell: an access token stops working at a cell
// within 5 s of logout (the global layer pushes the revocation over NATS;
// without it the token would work at the cell until it expires).
func TestLogoutRevokesAtTheCell(t *testing.T) {
	st := startStack(t, "eu-west-1")
	ctx := context.Background()
	c, err := client.New(client.Config{GlobalURL: st.GlobalURL})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.LoginDevice(ctx, "revoke-device-000001")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, url string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, url, nil)
		req.Header.Set("Authorization", "Bearer "+sess.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cellURL := st.Cells[0].API + "/matchmaking/status?ticket=00000000-0000-0000-0000-000000000000"
	testenv.Eventually(t, 20*time.Second, func() error {
		if code := call(http.MethodGet, cellURL); code == http.StatusUnauthorized {
			return fmt.Errorf("cell refuses a fresh token: %d", code)
		}
		return nil
	})
	if code := call(http.MethodPost, st.GlobalURL+"/auth/logout"); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	loggedOut := time.Now()
	testenv.Eventually(t, 5*time.Second, func() error {
		if code := call(http.MethodGet, cellURL); code != http.StatusUnauthorized {
			return fmt.Errorf("cell still accepts the token: %d", code)
		}
		return nil
	})
	t.Logf("token refused at the cell %v after logout", time.Since(loggedOut).Round(time.Millisecond))
}
