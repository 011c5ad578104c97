package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startStack runs a dev stack on a private database and returns it running.
func startStack(t *testing.T, cells ...string) *Stack {
	t.Helper()
	d := testenv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := Start(ctx, Config{DataDir: t.TempDir(), Cells: cells, DatabaseURL: d.URL, Ephemeral: true}, quietLog())
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
}
