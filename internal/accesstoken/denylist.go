package accesstoken

import (
	"sync"
	"time"
)

// Denial withdraws access tokens before they expire: those of a refresh
// family, or all of a subject, issued before IssuedBefore. It is kept
// until Expires (when every token it can match has expired anyway).
type Denial struct {
	Family       string
	Subject      string
	IssuedBefore time.Time
	Expires      time.Time
}

// DenyList is the set of current denials a Verifier checks. Safe for
// concurrent use; the zero value is empty and usable.
type DenyList struct {
	mu       sync.Mutex
	families map[string]Denial // guarded by mu
	subjects map[string]Denial // guarded by mu
}

// Add records d (a later IssuedBefore for the same key wins).
func (l *DenyList) Add(d Denial) {
	l.mu.Lock()
	defer l.mu.Unlock()
	put := func(m *map[string]Denial, k string) {
		if k == "" {
			return
		}
		if *m == nil {
			*m = map[string]Denial{}
		}
		if old, ok := (*m)[k]; !ok || d.IssuedBefore.After(old.IssuedBefore) || d.Expires.After(old.Expires) {
			if ok && old.IssuedBefore.After(d.IssuedBefore) {
				d.IssuedBefore = old.IssuedBefore
			}
			(*m)[k] = d
		}
	}
	put(&l.families, d.Family)
	put(&l.subjects, d.Subject)
}

// Denied reports whether a token of family and subject issued at iat is
// withdrawn at now. Expired denials are dropped on the way.
func (l *DenyList) Denied(family, subject string, iat, now time.Time) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	check := func(m map[string]Denial, k string) bool {
		d, ok := m[k]
		if !ok || k == "" {
			return false
		}
		if now.After(d.Expires) {
			delete(m, k)
			return false
		}
		return iat.Before(d.IssuedBefore)
	}
	return check(l.families, family) || check(l.subjects, subject)
}

// Len is the number of denials held (tests, metrics).
func (l *DenyList) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.families) + len(l.subjects)
}
