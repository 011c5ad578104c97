package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	consul "github.com/hashicorp/consul/api"

	"github.com/cellgrid/cellgrid/topology"
)

// errNoDB: --db is not a cobra-required flag, because Nomad jobs pass the
// URL (it carries a password) in CELLGRID_DB, which cobra does not count.
var errNoDB = errors.New("--db (or CELLGRID_DB) is required")

func consulClient(addr string) (*consul.Client, error) {
	cfg := consul.DefaultConfig()
	cfg.Address = addr
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client %s: %w", addr, err)
	}
	return c, nil
}

// cellRegistrar registers a cell's API and relay in Consul while it runs.
func cellRegistrar(addr, id, region, apiURL, relayAddr string, log *slog.Logger) (*topology.Registrar, error) {
	c, err := consulClient(addr)
	if err != nil {
		return nil, err
	}
	svcs, err := topology.CellServices(id, region, apiURL, relayAddr)
	if err != nil {
		return nil, err
	}
	cfg := topology.DefaultRegistrarConfig()
	cfg.Services = svcs
	return topology.NewRegistrar(cfg, c, log.With("component", "consul"))
}

// globalRegistrar registers the global layer in Consul while it runs.
func globalRegistrar(addr, apiURL string, log *slog.Logger) (*consul.Client, *topology.Registrar, error) {
	c, err := consulClient(addr)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	svc, err := topology.GlobalService(host+"-"+fmt.Sprint(os.Getpid()), apiURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := topology.DefaultRegistrarConfig()
	cfg.Services = []topology.Service{svc}
	r, err := topology.NewRegistrar(cfg, c, log.With("component", "consul"))
	return c, r, err
}

// runAll runs fns until ctx ends or one fails; the first failure cancels
// the others and is returned once all have ended.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(fns))
	for _, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
