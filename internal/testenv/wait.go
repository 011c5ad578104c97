package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Eventually calls f until it returns nil or timeout passes, then fails the
// test with f's last error. Use it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckGoroutines records the goroutine count now and, at cleanup, fails
// the test if more remain after a grace period (leak check).
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, trimStacks(string(buf)))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func trimStacks(s string) string {
	parts := strings.Split(s, "\n\n")
	if len(parts) > 30 {
		parts = append(parts[:30], fmt.Sprintf("… %d more", len(parts)-30))
	}
	return strings.Join(parts, "\n\n")
}
