package supervise

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/testenv"
)

var (
	errBoom  = errors.New("boom")
	errOther = errors.New("other")
)

// untilCancel runs until ctx ends and records that it was stopped.
func untilCancel(stopped chan<- string, name string, ret error) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		stopped <- name
		return ret
	}
}

func failNow(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

func TestGroup(t *testing.T) {
	type comp struct {
		name string
		run  func(stopped chan<- string) func(context.Context) error
	}
	wait := func(name string, ret error) comp {
		return comp{name, func(s chan<- string) func(context.Context) error { return untilCancel(s, name, ret) }}
	}
	fail := func(name string, err error) comp {
		return comp{name, func(chan<- string) func(context.Context) error { return failNow(err) }}
	}
	tests := []struct {
		name       string
		comps      []comp
		cancel     bool     // cancel the parent ctx (clean stop)
		want       []string // substrings the error must hold; nil = no error
		wantFailed []string // components Health names
	}{
		{name: "clean cancel returns nil", comps: []comp{wait("a", nil), wait("b", nil)}, cancel: true},
		{name: "context.Canceled after cancel is clean", comps: []comp{wait("a", context.Canceled)}, cancel: true},
		{name: "failure at start cancels the others", comps: []comp{wait("a", nil), fail("b", errBoom), wait("c", nil)},
			want: []string{"b: boom"}, wantFailed: []string{"b"}},
		{name: "all errors are reported", comps: []comp{fail("a", errBoom), wait("b", errOther)},
			want: []string{"a: boom", "b: other"}, wantFailed: []string{"a", "b"}},
		{name: "nil before cancel is a failure", comps: []comp{fail("a", nil), wait("b", nil)},
			want: []string{"a: stopped unexpectedly"}, wantFailed: []string{"a"}},
		{name: "error on clean stop is kept", comps: []comp{wait("a", errOther)}, cancel: true,
			want: []string{"a: other"}, wantFailed: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testenv.CheckGoroutines(t)
			stopped := make(chan string, len(tc.comps))
			var g Group
			for _, c := range tc.comps {
				g.Add(c.name, c.run(stopped))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return: the others were not cancelled")
			}
			close(stopped)
			for name := range stopped {
				t.Logf("%s stopped", name)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
			} else {
				if err == nil {
					t.Fatalf("Run = nil, want %q", tc.want)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Run = %q, want it to contain %q", err, w)
					}
				}
			}
			if len(tc.want) > 0 && !errors.Is(err, errBoom) && !errors.Is(err, errOther) && !errors.Is(err, ErrStopped) {
				t.Errorf("Run = %v: the components' errors are not wrapped", err)
			}
			h := g.Health()
			if (h == nil) != (len(tc.wantFailed) == 0) {
				t.Fatalf("Health = %v, want failures %v", h, tc.wantFailed)
			}
			for _, f := range tc.wantFailed {
				if !strings.Contains(h.Error(), f+":") {
					t.Errorf("Health = %q, want it to name %q", h, f)
				}
			}
		})
	}
}

// TestHealthWhileRunning shows readiness turning red while the other
// components are still winding down.
func TestHealthWhileRunning(t *testing.T) {
	testenv.CheckGoroutines(t)
	var g Group
	release := make(chan struct{})
	dying := make(chan struct{})
	g.Add("server", func(ctx context.Context) error {
		<-ctx.Done()
		<-release // a slow shutdown: the group is still running
		return nil
	})
	g.Add("consumer", func(ctx context.Context) error {
		<-dying
		return errBoom
	})
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	if err := g.Check(context.Background()); err != nil {
		t.Fatalf("Check before any failure = %v", err)
	}
	close(dying)
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := g.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "consumer: boom") {
			return errors.New("readiness still green")
		}
		return nil
	})
	close(release)
	if err := <-done; !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v, want boom", err)
	}
}

func TestRunTwice(t *testing.T) {
	var g Group
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Add("a", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Run(ctx); err == nil {
		t.Fatal("second Run returned nil")
	}
}

func TestLifecycle(t *testing.T) {
	testenv.CheckGoroutines(t)
	var l Lifecycle
	ended := make(chan struct{})
	started := make(chan struct{})
	go func() {
		ctx, done := l.Start(context.Background())
		defer done()
		close(started)
		<-ctx.Done()
		close(ended)
	}()
	<-started
	l.Close() // stops the running Run and waits for it
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before Run ended")
	}
	l.Close() // twice is fine
	ctx, done := l.Start(context.Background())
	defer done()
	if ctx.Err() == nil {
		t.Fatal("Run after Close got a live context")
	}
	if !l.Closed() {
		t.Fatal("Closed = false after Close")
	}
}

// TestLinger: after a failure, a lingering component (the HTTP server)
// keeps running so readiness can be seen red, until its linger passes or
// the parent context ends; without a failure it stops with the others.
func TestLinger(t *testing.T) {
	testenv.CheckGoroutines(t)
	t.Run("failure: server lingers until parent cancel", func(t *testing.T) {
		var g Group
		serving := make(chan struct{})
		g.AddLingering("http", time.Hour, func(ctx context.Context) error {
			close(serving)
			<-ctx.Done()
			return nil
		})
		g.Add("results", failNow(errBoom))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		<-serving
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := g.Check(ctx); err == nil || !strings.Contains(err.Error(), "results: boom") {
				return errors.New("readiness still green")
			}
			return nil
		})
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while the server should linger", err)
		default:
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, errBoom) || strings.Contains(err.Error(), "http") {
				t.Fatalf("Run = %v, want only results: boom", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("parent cancel did not end the linger")
		}
	})
	t.Run("failure: linger runs out", func(t *testing.T) {
		var g Group
		g.AddLingering("http", 10*time.Millisecond, func(ctx context.Context) error { <-ctx.Done(); return nil })
		g.Add("results", failNow(errBoom))
		if err := g.Run(context.Background()); !errors.Is(err, errBoom) {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("clean stop does not linger", func(t *testing.T) {
		var g Group
		g.AddLingering("http", time.Hour, func(ctx context.Context) error { <-ctx.Done(); return nil })
		g.Add("results", func(ctx context.Context) error { <-ctx.Done(); return nil })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := g.Run(ctx); err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
	t.Run("server failure stops the group", func(t *testing.T) {
		var g Group
		g.AddLingering("http", time.Hour, failNow(errOther))
		g.Add("results", func(ctx context.Context) error { <-ctx.Done(); return nil })
		if err := g.Run(context.Background()); !errors.Is(err, errOther) {
			t.Fatalf("Run = %v", err)
		}
	})
}
