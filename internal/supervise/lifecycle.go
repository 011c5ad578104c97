package supervise

import (
	"context"
	"sync"
)

// Lifecycle gives a component the Close of the component shape: Close
// stops a running Run and waits for it to return, makes a later Run
// return at once, and is safe to call twice and concurrently with Run.
// The zero Lifecycle is ready to use. A component's Run starts with
//
//	ctx, done := c.life.Start(ctx)
//	defer done()
//
// and its Close calls c.life.Close before releasing what New acquired.
type Lifecycle struct {
	once   sync.Once
	stop   context.Context // cancelled by Close
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool           // guarded by mu
	runs   sync.WaitGroup // Add under mu while !closed
}

func (l *Lifecycle) init() {
	l.once.Do(func() { l.stop, l.cancel = context.WithCancel(context.Background()) })
}

// Start derives Run's context: it ends with parent or at Close. done
// must be called when Run returns.
func (l *Lifecycle) Start(parent context.Context) (ctx context.Context, done func()) {
	l.init()
	ctx, cancel := context.WithCancel(parent)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		cancel()
		return ctx, func() {}
	}
	l.runs.Add(1)
	l.mu.Unlock()
	unhook := context.AfterFunc(l.stop, cancel)
	return ctx, func() {
		unhook()
		cancel()
		l.runs.Done()
	}
}

// Closed reports whether Close has been called.
func (l *Lifecycle) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close cancels every running Run's context and waits for them to
// return. Safe to call twice.
func (l *Lifecycle) Close() {
	l.init()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.runs.Wait()
}
