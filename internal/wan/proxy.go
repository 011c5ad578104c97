package wan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// ProxyConfig configures a TCP Proxy.
type ProxyConfig struct {
	// Name names the proxy in logs ("gw-us-east-1").
	Name string
	// Listen is the address clients connect to; default 127.0.0.1:0 (read
	// the chosen one back with Addr; a Heal rebinds the same port).
	Listen string
	// Upstream is the host:port connections are forwarded to (required).
	Upstream string
	// Delay is the one-way delay added in each direction.
	Delay time.Duration
	// Jitter is toxiproxy's latency jitter (± around Delay).
	Jitter time.Duration
}

// Proxy is a TCP path with latency that can be cut and healed: toxiproxy
// embedded as a library (no toxiproxy server or HTTP API).
type Proxy struct {
	cfg ProxyConfig
	p   *toxiproxy.Proxy

	mu  sync.Mutex
	cut bool // guarded by mu
}

// NewProxy starts listening and forwarding.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("wan proxy: upstream required")
	}
	if cfg.Delay < 0 || cfg.Jitter < 0 {
		return nil, errors.New("wan proxy: negative delay")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "proxy-" + cfg.Upstream
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, cfg.Name, cfg.Listen, cfg.Upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("wan proxy %s: start: %w", cfg.Name, err)
	}
	x := &Proxy{cfg: cfg, p: p}
	if err := x.SetLatency(cfg.Delay, cfg.Jitter); err != nil {
		p.Stop()
		return nil, err
	}
	return x, nil
}

// Addr is the address to connect to instead of the upstream.
func (x *Proxy) Addr() string {
	x.p.Lock()
	defer x.p.Unlock()
	return x.p.Listen
}

// Delay is the current one-way delay.
func (x *Proxy) Delay() time.Duration {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cfg.Delay
}

// SetLatency replaces the one-way delay of both directions.
func (x *Proxy) SetLatency(delay, jitter time.Duration) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, stream := range []string{"upstream", "downstream"} {
		name := "latency_" + stream
		_ = x.p.Toxics.RemoveToxic(context.Background(), name)
		if delay == 0 && jitter == 0 {
			continue
		}
		js := fmt.Sprintf(`{"name":%q,"type":"latency","stream":%q,"toxicity":1,"attributes":{"latency":%d,"jitter":%d}}`,
			name, stream, delay.Milliseconds(), jitter.Milliseconds())
		if _, err := x.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			return fmt.Errorf("wan proxy %s: latency: %w", x.cfg.Name, err)
		}
	}
	x.cfg.Delay, x.cfg.Jitter = delay, jitter
	return nil
}

// Cut closes every connection through the proxy and refuses new ones
// until Heal.
func (x *Proxy) Cut() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.cut {
		x.cut = true
		x.p.Stop()
	}
}

// Heal accepts connections again on the same address.
func (x *Proxy) Heal() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.cut {
		return nil
	}
	if err := x.p.Start(); err != nil {
		return fmt.Errorf("wan proxy %s: heal: %w", x.cfg.Name, err)
	}
	x.cut = false
	return nil
}

// IsCut reports whether the proxy is cut.
func (x *Proxy) IsCut() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cut
}

// Close stops the proxy for good. Safe twice.
func (x *Proxy) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cut = true
	x.p.Stop()
	return nil
}
