package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cellgrid/cellgrid/cell/matchmaker"
	"github.com/cellgrid/cellgrid/internal/natsembed"
	"github.com/cellgrid/cellgrid/internal/wan"
)

// WAN places the player and the regions at distances on loopback
// (`cellgrid dev --wan`): every cell's relay and probe beacon is reached
// through a wan.Link (UDP, user space), every NATS cluster's gateway
// through a wan.Proxy (toxiproxy, TCP).
//
// Gateways follow a hub model: a message into cluster X crosses X's proxy,
// which adds Gateway[X] one way, so clusters A and B are Gateway[A] +
// Gateway[B] apart, round trip.
type WAN struct {
	// Player is the one-way delay from the player to each cell (both
	// directions); a cell not listed gets DefaultPlayerDelay.
	Player map[string]time.Duration
	// DefaultPlayerDelay is the delay of unlisted cells.
	DefaultPlayerDelay time.Duration
	// Jitter is added to every player path (uniform in [0, Jitter)).
	Jitter time.Duration
	// Loss is the loss probability per cell, both directions.
	Loss map[string]float64
	// Gateway is each NATS cluster's one-way distance from the hub
	// ("global" is a cluster too); unlisted clusters get 0.
	Gateway map[string]time.Duration
	// MaxLatency replaces every game mode's latency limit (round trip),
	// so the next region is still playable after a failover while a
	// player further away is refused. Default 200 ms; 0 keeps the modes'.
	MaxLatency time.Duration
}

// DefaultWAN is the layout of `cellgrid dev --wan`: the player in Europe,
// eu-west-1 20 ms, us-east-1 80 ms, ap-south-1 150 ms away one way; the
// global layer near eu-west-1.
func DefaultWAN() *WAN {
	return &WAN{
		Player: map[string]time.Duration{
			"eu-west-1": 20 * time.Millisecond, "us-east-1": 80 * time.Millisecond, "ap-south-1": 150 * time.Millisecond,
		},
		DefaultPlayerDelay: 50 * time.Millisecond,
		Jitter:             time.Millisecond,
		MaxLatency:         200 * time.Millisecond,
		Gateway: map[string]time.Duration{
			"global": 5 * time.Millisecond, "eu-west-1": 5 * time.Millisecond,
			"us-east-1": 35 * time.Millisecond, "ap-south-1": 60 * time.Millisecond,
		},
	}
}

func (w *WAN) playerPath(cell string) wan.Path {
	d, ok := w.Player[cell]
	if !ok {
		d = w.DefaultPlayerDelay
	}
	return wan.Path{Delay: d, Jitter: w.Jitter, Loss: w.Loss[cell]}
}

// wanModes applies the layout's latency limit to a cell's game modes.
func (st *Stack) wanModes(modes []matchmaker.GameMode) []matchmaker.GameMode {
	if st.wan == nil || st.wan.cfg.MaxLatency <= 0 {
		return modes
	}
	out := slices.Clone(modes)
	for i := range out {
		out[i].MaxLatency = st.wan.cfg.MaxLatency
	}
	return out
}

// wanLayer is what a stack built with a WAN runs.
type wanLayer struct {
	cfg     *WAN
	mu      sync.Mutex
	links   map[string]*wan.Link  // guarded by mu: by cell
	proxies map[string]*wan.Proxy // guarded by mu: by NATS cluster
	// switches sit between each proxy and its gateway port, to isolate a
	// cluster in both directions.
	switches map[string]*wan.GatewaySwitch // guarded by mu
}

func newWANLayer(cfg *WAN) *wanLayer {
	return &wanLayer{cfg: cfg, links: map[string]*wan.Link{}, proxies: map[string]*wan.Proxy{}, switches: map[string]*wan.GatewaySwitch{}}
}

// gatewayFront puts a proxy in front of a cluster's gateway.
func (st *Stack) gatewayFront(cluster, addr string) (string, error) {
	w := st.wan
	sw, err := wan.NewGatewaySwitch(cluster, addr)
	if err != nil {
		return "", err
	}
	st.closers = append(st.closers, func() { _ = sw.Close() })
	p, err := wan.NewProxy(wan.ProxyConfig{Name: "gw-" + cluster, Upstream: sw.Addr(), Delay: w.cfg.Gateway[cluster]})
	if err != nil {
		return "", err
	}
	st.closers = append(st.closers, func() { _ = p.Close() })
	w.mu.Lock()
	w.proxies[cluster], w.switches[cluster] = p, sw
	w.mu.Unlock()
	return p.Addr(), nil
}

// startSuperCluster starts the NATS supercluster, behind the WAN if any.
func (st *Stack) startSuperCluster(ctx context.Context, root string, names []string) (*natsembed.SuperCluster, error) {
	if st.wan == nil {
		return natsembed.StartSuperCluster(ctx, root, names, st.log)
	}
	return natsembed.StartSuperClusterFronted(ctx, root, names, st.gatewayFront, st.log)
}

// wanRelaySocket binds the client-facing socket of a cell's link: its
// address is what the cell advertises as relay and beacon. Empty without a
// WAN.
func (st *Stack) wanRelaySocket(cell string) (net.PacketConn, string, error) {
	if st.wan == nil {
		return nil, "", nil
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("devstack: wan socket of %s: %w", cell, err)
	}
	return pc, pc.LocalAddr().String(), nil
}

// attachWANLink starts forwarding pc to the cell's bound relay.
func (st *Stack) attachWANLink(cell string, pc net.PacketConn, relayAddr string) error {
	if pc == nil {
		return nil
	}
	p := st.wan.cfg.playerPath(cell)
	l, err := wan.New(wan.Config{Upstream: relayAddr, Up: p, Down: p}, wan.Deps{Conn: pc, Log: st.log.With("component", "wan", "cell", cell)})
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("devstack: wan link of %s: %w", cell, err)
	}
	st.closers = append(st.closers, func() { _ = l.Close() })
	st.group.Add("wan link "+cell, l.Run)
	st.wan.mu.Lock()
	st.wan.links[cell] = l
	st.wan.mu.Unlock()
	return nil
}

// WANLink is the emulated path between the player and a cell (nil without
// --wan): change it with SetPaths (loss, blackhole) during a drill.
func (st *Stack) WANLink(cell string) *wan.Link {
	if st.wan == nil {
		return nil
	}
	st.wan.mu.Lock()
	defer st.wan.mu.Unlock()
	return st.wan.links[cell]
}

// GatewayProxy is the emulated path into a NATS cluster's gateway (nil
// without --wan): Cut and Heal it to partition the cluster.
func (st *Stack) GatewayProxy(cluster string) *wan.Proxy {
	if st.wan == nil {
		return nil
	}
	st.wan.mu.Lock()
	defer st.wan.mu.Unlock()
	return st.wan.proxies[cluster]
}

// IsolateCluster cuts a NATS cluster off from every other, both
// directions (what a region's network outage does to its gateways).
func (st *Stack) IsolateCluster(cluster string) error {
	return st.eachSwitch(func(sw *wan.GatewaySwitch) { sw.Isolate(cluster) })
}

// RejoinCluster undoes IsolateCluster; the gateways reconnect.
func (st *Stack) RejoinCluster(cluster string) error {
	return st.eachSwitch(func(sw *wan.GatewaySwitch) { sw.Rejoin(cluster) })
}

func (st *Stack) eachSwitch(f func(*wan.GatewaySwitch)) error {
	if st.wan == nil {
		return errors.New("devstack: the stack has no WAN")
	}
	st.wan.mu.Lock()
	defer st.wan.mu.Unlock()
	for _, sw := range st.wan.switches {
		f(sw)
	}
	return nil
}

// PrintWANLayout writes the emulated distances (nothing without --wan).
func (st *Stack) PrintWANLayout(out io.Writer) {
	if st.wan == nil {
		return
	}
	st.wan.mu.Lock()
	defer st.wan.mu.Unlock()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAN\tONE-WAY\tRTT\tLOSS\tCLIENTS DIAL\tFORWARDS TO")
	cells := make([]string, 0, len(st.wan.links))
	for c := range st.wan.links {
		cells = append(cells, c)
	}
	slices.Sort(cells)
	for _, c := range cells {
		l := st.wan.links[c]
		up, _ := l.Paths()
		fmt.Fprintf(tw, "player→%s\t%v\t%v\t%.0f%%\t%s\t%s\n", c, up.Delay, 2*up.Delay, 100*up.Loss, l.Addr(), l.Upstream())
	}
	clusters := make([]string, 0, len(st.wan.proxies))
	for c := range st.wan.proxies {
		clusters = append(clusters, c)
	}
	slices.Sort(clusters)
	for _, c := range clusters {
		p := st.wan.proxies[c]
		fmt.Fprintf(tw, "gateway→%s\t%v\t\t\t%s\t\n", c, p.Delay(), p.Addr())
	}
	_ = tw.Flush()
	if len(clusters) > 1 {
		fmt.Fprintln(out, "gateways: hub model, clusters A and B are one-way(A)+one-way(B) apart round trip")
	}
}

// wanFile is the JSON form of a WAN layout (`cellgrid dev --wan-config`),
// in milliseconds.
type wanFile struct {
	PlayerMS        map[string]float64 `json:"player_ms"`
	DefaultPlayerMS *float64           `json:"default_player_ms"`
	JitterMS        *float64           `json:"jitter_ms"`
	Loss            map[string]float64 `json:"loss"`
	GatewayMS       map[string]float64 `json:"gateway_ms"`
	MaxLatencyMS    *float64           `json:"max_latency_ms"`
}

// LoadWAN reads a layout from a JSON file; what it leaves out keeps
// DefaultWAN's value. Example:
//
//	{"player_ms": {"eu-west-1": 10, "us-east-1": 90}, "loss": {"us-east-1": 0.1},
//	 "gateway_ms": {"global": 5, "us-east-1": 40}}
func LoadWAN(path string) (*WAN, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wan layout: %w", err)
	}
	var f wanFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("wan layout %s: %w", path, err)
	}
	ms := func(v float64) (time.Duration, error) {
		if v < 0 {
			return 0, fmt.Errorf("wan layout %s: negative delay %v", path, v)
		}
		return time.Duration(v * float64(time.Millisecond)), nil
	}
	w := DefaultWAN()
	for c, v := range f.PlayerMS {
		if w.Player[c], err = ms(v); err != nil {
			return nil, err
		}
	}
	for c, v := range f.GatewayMS {
		if w.Gateway[c], err = ms(v); err != nil {
			return nil, err
		}
	}
	if f.DefaultPlayerMS != nil {
		if w.DefaultPlayerDelay, err = ms(*f.DefaultPlayerMS); err != nil {
			return nil, err
		}
	}
	if f.JitterMS != nil {
		if w.Jitter, err = ms(*f.JitterMS); err != nil {
			return nil, err
		}
	}
	if f.MaxLatencyMS != nil {
		if w.MaxLatency, err = ms(*f.MaxLatencyMS); err != nil {
			return nil, err
		}
	}
	if len(f.Loss) > 0 {
		w.Loss = map[string]float64{}
	}
	for c, v := range f.Loss {
		if v < 0 || v > 1 {
			return nil, fmt.Errorf("wan layout %s: loss %v of %s outside 0..1", path, v, c)
		}
		w.Loss[c] = v
	}
	return w, nil
}
