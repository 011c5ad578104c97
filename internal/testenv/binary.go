package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// CellgridBinary builds ./cmd/cellgrid once per test binary and returns
// its path: what Nomad jobs run in tests (the same binary ships to
// production). It is removed by Main.
func CellgridBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		dir, err := os.MkdirTemp("", "cellgrid-bin-")
		if err != nil {
			binErr = err
			return
		}
		sharedMu.Lock()
		sharedStops = append(sharedStops, func() { _ = os.RemoveAll(dir) })
		sharedMu.Unlock()
		binPath = filepath.Join(dir, "cellgrid")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cellgrid")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/cellgrid: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("testenv: %v", binErr)
	}
	return binPath
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the cellgrid module")
	}
	return filepath.Dir(mod), nil
}
