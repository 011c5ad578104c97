package sourcelimit

import (
	"testing"
	"time"
)

func TestBurstThenRefill(t *testing.T) {
	l := New[string](10, 3, 100)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !l.Allow("a", now) {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if l.Allow("a", now) {
		t.Fatal("4th event of a burst of 3 allowed")
	}
	if !l.Allow("b", now) {
		t.Fatal("another source is limited by a's burst")
	}
	if !l.Allow("a", now.Add(100*time.Millisecond)) {
		t.Fatal("no token refilled after 1/rate")
	}
	if l.Allow("a", now.Add(100*time.Millisecond)) {
		t.Fatal("more than one token refilled")
	}
}

func TestBoundedSources(t *testing.T) {
	l := New[int](1, 1, 50)
	now := time.Unix(1000, 0)
	for i := range 10000 {
		l.Allow(i, now)
		if l.Len() > 50 {
			t.Fatalf("%d sources tracked, max 50", l.Len())
		}
	}
	// A refilled bucket is evicted before a limited one.
	l = New[int](1, 1, 2)
	l.Allow(1, now)
	l.Allow(2, now.Add(2*time.Second))
	l.Allow(3, now.Add(2*time.Second)) // 1 is full again: it goes
	if l.Allow(2, now.Add(2*time.Second)) {
		t.Fatal("the limited source 2 was evicted instead of the refilled source 1")
	}
}

func TestZeroRateAllowsAll(t *testing.T) {
	l := New[int](0, 1, 1)
	for i := range 100 {
		if !l.Allow(i%3, time.Unix(0, 0)) {
			t.Fatal("refused with rate 0")
		}
	}
}
