package httpapi

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterCollector registers c on reg and returns it, or returns the
// identical collector already registered there (several components of one
// process, or several instances in a test, share a registry). A nil reg
// registers nothing.
func RegisterCollector[C prometheus.Collector](reg prometheus.Registerer, c C) C {
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
