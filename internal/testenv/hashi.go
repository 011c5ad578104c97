package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cellgrid/cellgrid/internal/localserver"
)

// shared agents of the test binary, stopped by Main.
var (
	sharedMu      sync.Mutex
	sharedStops   []func()
	sharedStack   *HashiStack
	sharedErr     error
	sharedStarted bool
)

func stopShared() {
	sharedMu.Lock()
	stops := sharedStops
	sharedStops = nil
	sharedMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
}

// HashiStack is a Consul dev agent and a Nomad dev agent that registers
// services in it.
type HashiStack struct {
	Consul *Consul
	Nomad  *Nomad
}

// SharedHashiStack returns the Consul + Nomad pair of this test binary,
// starting it on first use (≈ 10 s). Main stops it at the end, so the
// package must use testenv.Main from TestMain. Tests sharing it must use
// unique job and service names.
func SharedHashiStack(t testing.TB) *HashiStack {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if !sharedStarted {
		sharedStarted = true
		sharedStack, sharedErr = startHashiStack()
	}
	if sharedErr != nil {
		t.Fatalf("testenv: %v", sharedErr)
	}
	return sharedStack
}

func startHashiStack() (*HashiStack, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := localserver.StartConsul(ctx, localserver.ConsulConfig{})
	if err != nil {
		return nil, err
	}
	sharedStops = append(sharedStops, c.Stop)
	n, err := localserver.StartNomad(ctx, localserver.NomadConfig{ConsulAddr: c.Addr})
	if err != nil {
		return nil, err
	}
	sharedStops = append(sharedStops, n.Stop)
	return &HashiStack{Consul: c, Nomad: n}, nil
}
