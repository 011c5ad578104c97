package sourcelimit

import "time"

// Limiter holds one token bucket per source key. It is not safe for
// concurrent use: each owner calls it from one goroutine (a read loop).
type Limiter[K comparable] struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	m     map[K]*bucket
}

type bucket struct {
	tokens float64
	last   int64 // Unix nanoseconds of the last refill
}

// New returns a Limiter allowing rate events per second per source with
// bursts of burst, tracking at most maxSources sources. rate ≤ 0 refuses
// nothing; burst and maxSources are raised to at least 1.
func New[K comparable](rate float64, burst, maxSources int) *Limiter[K] {
	return &Limiter[K]{
		rate:  rate,
		burst: float64(max(burst, 1)),
		max:   max(maxSources, 1),
		m:     make(map[K]*bucket),
	}
}

// Len is the number of sources tracked.
func (l *Limiter[K]) Len() int { return len(l.m) }

// Allow takes a token from k's bucket at now and reports whether there was
// one. A source seen for the first time starts with a full bucket.
func (l *Limiter[K]) Allow(k K, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	ns := now.UnixNano()
	b := l.m[k]
	if b == nil {
		if len(l.m) >= l.max {
			l.evict(ns)
		}
		b = &bucket{tokens: l.burst, last: ns}
		l.m[k] = b
	}
	if ns > b.last {
		b.tokens = min(l.burst, b.tokens+float64(ns-b.last)/1e9*l.rate)
		b.last = ns
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict makes room for one source: it drops the buckets that have refilled
// to full (forgetting them changes nothing), and when none has, an
// arbitrary one (map order), so memory stays bounded under a flood from
// more sources than max.
func (l *Limiter[K]) evict(ns int64) {
	for k, b := range l.m {
		if b.tokens+float64(ns-b.last)/1e9*l.rate >= l.burst {
			delete(l.m, k)
		}
	}
	if len(l.m) < l.max {
		return
	}
	for k := range l.m {
		delete(l.m, k)
		if len(l.m) < l.max {
			return
		}
	}
}
