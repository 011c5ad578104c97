package cell

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

// getReadyz returns base's /readyz status and JSON body.
func getReadyz(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var body map[string]string
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("readyz %d %q: %v", res.StatusCode, b, err)
	}
	return res.StatusCode, body
}

// TestOpsListener: /metrics and the readiness errors are served on the
// ops listener only; with Redis down the public /readyz names the failing
// check without its error text (addresses, internals).
func TestOpsListener(t *testing.T) {
	e := newEnv(t, nil)
	get := func(url string) (int, string, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	if e.c.OpsURL() == e.c.URL() {
		t.Fatalf("ops and public listeners share %s", e.c.URL())
	}
	if code, ct, body := get(e.c.URL() + "/metrics"); code != 404 || ct != "application/json" || !strings.Contains(body, `"code"`) {
		t.Fatalf("public /metrics: %d %s %s, want 404 JSON", code, ct, body)
	}
	if code, _, body := get(e.c.OpsURL() + "/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("ops /metrics: %d %.200s", code, body)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, body := getReadyz(t, e.c.URL()); code != 200 {
			return fmt.Errorf("readyz %d %v", code, body)
		}
		return nil
	})

	e.rds.Stop(t)
	testenv.Eventually(t, 30*time.Second, func() error {
		code, body := getReadyz(t, e.c.OpsURL())
		if code != 503 || body["redis"] == "ok" || body["redis"] == "failing" || body["redis"] == "" {
			return fmt.Errorf("ops readyz %d %v, want the redis error", code, body)
		}
		return nil
	})
	code, body := getReadyz(t, e.c.URL())
	if code != 503 || body["redis"] != "failing" {
		t.Fatalf("public readyz %d %v, want 503 with redis failing", code, body)
	}
	for name, v := range body {
		if v != "ok" && v != "failing" {
			t.Errorf("public readyz %s = %q: error text on the public listener", name, v)
		}
	}
}
