package relay

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of relay_dropped_total{reason}.
const (
	dropUnbound        = "unbound"         // not control, sender not bound
	dropMalformed      = "malformed"       // starts with packet.Magic, bad type/length
	dropUnexpected     = "unexpected_type" // well-formed control packet the relay does not accept
	dropTooLarge       = "too_large"       // longer than MaxDatagram
	dropRateLimited    = "rate_limited"    // binding over its packet or byte budget
	dropPingLimited    = "ping_limited"    // beacon over per-source or global budget
	dropHandshakeQueue = "handshake_queue" // HELLO queue full
	dropHelloLimited   = "hello_limited"   // HELLO over its source's (ip:port or IP) budget
	dropUpstreamWrite  = "upstream_write"  // write to the DGS failed
	dropClientWrite    = "client_write"    // write to the client failed
)

var dropReasons = []string{dropUnbound, dropMalformed, dropUnexpected, dropTooLarge,
	dropRateLimited, dropPingLimited, dropHandshakeQueue, dropHelloLimited, dropUpstreamWrite, dropClientWrite}

// HELLO outcomes, the values of relay_hello_total{outcome}: "bound" (new
// binding), "moved" (binding moved to a new address), "repeat" (HELLO again
// from the bound address), "challenged" (a HELLO that would move a binding
// to a new address was answered with a CHALLENGE), or a
// packet.RejectReason's String.
const (
	helloBound      = "bound"
	helloMoved      = "moved"
	helloRepeat     = "repeat"
	helloChallenged = "challenged"
)

type metrics struct {
	bound      prometheus.Gauge
	fwdPackets *prometheus.CounterVec // direction: upstream (client→DGS), downstream
	fwdBytes   *prometheus.CounterVec
	drops      *prometheus.CounterVec
	hellos     *prometheus.CounterVec
	pongs      prometheus.Counter

	// Pre-resolved children: the hot path does no label lookups.
	upPackets, upBytes, downPackets, downBytes prometheus.Counter
	drop                                       map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bound: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_bound_sessions", Help: "Client addresses currently bound to a DGS.",
		}),
		fwdPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_forwarded_packets_total", Help: "Datagrams forwarded, by direction.",
		}, []string{"direction"}),
		fwdBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_forwarded_bytes_total", Help: "Payload bytes forwarded, by direction.",
		}, []string{"direction"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_dropped_total", Help: "Datagrams dropped, by reason.",
		}, []string{"reason"}),
		hellos: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_hello_total", Help: "HELLO handshakes, by outcome.",
		}, []string{"outcome"}),
		pongs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_pongs_total", Help: "Beacon PINGs answered.",
		}),
	}
	m.upPackets = m.fwdPackets.WithLabelValues("upstream")
	m.upBytes = m.fwdBytes.WithLabelValues("upstream")
	m.downPackets = m.fwdPackets.WithLabelValues("downstream")
	m.downBytes = m.fwdBytes.WithLabelValues("downstream")
	m.drop = make(map[string]prometheus.Counter, len(dropReasons))
	for _, r := range dropReasons {
		m.drop[r] = m.drops.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.bound, m.fwdPackets, m.fwdBytes, m.drops, m.hellos, m.pongs} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register relay metrics: %w", err)
			}
		}
	}
	return m, nil
}
