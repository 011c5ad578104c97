package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// register registers c on reg, returning the collector already registered
// under the same description if there is one.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
