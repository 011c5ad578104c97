package supervise

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStopped is the failure recorded for a component whose Run returned
// nil while its context was still live.
var ErrStopped = errors.New("stopped unexpectedly")

// Component is one named part of a process.
type Component struct {
	Name string
	Run  func(ctx context.Context) error
	// Linger is how long the component keeps running after another
	// one failed (AddLingering).
	Linger time.Duration
}

// Group runs components and tracks their health. The zero Group is ready
// to use; Add components before Run.
type Group struct {
	mu      sync.Mutex
	comps   []Component      // guarded by mu
	running bool             // guarded by mu
	failed  map[string]error // guarded by mu: components that died
}

// Add registers a component. It panics when called after Run started or
// with an empty name or nil Run: both are programming errors.
func (g *Group) Add(name string, run func(context.Context) error) {
	if name == "" || run == nil {
		panic("supervise: component needs a name and a Run func")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running {
		panic("supervise: Add after Run")
	}
	g.comps = append(g.comps, Component{Name: name, Run: run})
}

// AddLingering registers a component that keeps running for linger after
// another component failed (but stops at once when Run's ctx ends): the
// HTTP server, so that /readyz answers 503 naming the dead component for
// a while before the listener closes and the process exits. Its own
// failure stops the group like any other.
func (g *Group) AddLingering(name string, linger time.Duration, run func(context.Context) error) {
	g.Add(name, run)
	g.mu.Lock()
	g.comps[len(g.comps)-1].Linger = linger
	g.mu.Unlock()
}

// Run starts every component and returns once all of them have returned.
// The first failure cancels the context the others run under. The result
// joins every failure ("name: err"); it is nil when every component
// returned after ctx (or a sibling's failure) ended it without error.
// Errors a component returns after being cancelled are kept when they
// are not context.Canceled. Run may be called once.
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return errors.New("supervise: Run called twice")
	}
	g.running = true
	comps := g.comps
	g.mu.Unlock()

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(comps))
	for i, c := range comps {
		cctx := ctx
		if c.Linger > 0 {
			var lcancel context.CancelFunc
			cctx, lcancel = context.WithCancel(parent)
			defer lcancel()
			stop := context.AfterFunc(ctx, func() {
				if parent.Err() != nil {
					lcancel()
					return
				}
				t := time.AfterFunc(c.Linger, lcancel)
				context.AfterFunc(cctx, func() { t.Stop() })
			})
			defer stop()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := cctx
			err := c.Run(ctx)
			switch {
			case err == nil && ctx.Err() == nil:
				err = ErrStopped
			case err == nil, ctx.Err() != nil && errors.Is(err, context.Canceled):
				return
			}
			err = fmt.Errorf("%s: %w", c.Name, err)
			errs[i] = err
			g.mu.Lock()
			if g.failed == nil {
				g.failed = map[string]error{}
			}
			g.failed[c.Name] = err
			g.mu.Unlock()
			cancel()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Health returns nil while no component has failed, otherwise the
// failures so far joined (in component order).
func (g *Group) Health() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, c := range g.comps {
		if err := g.failed[c.Name]; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Check is Health in the shape of a readiness check: it names the first
// failed component. ctx is unused; it exists to match httpapi.Check.Fn.
func (g *Group) Check(context.Context) error { return g.Health() }
