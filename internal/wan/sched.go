package wan

import (
	"container/heap"
	"sync"
	"time"
)

// scheduler delivers datagrams at their due time from one goroutine, so
// two datagrams due in order leave in order.
type scheduler struct {
	mu      sync.Mutex
	q       queue         // guarded by mu
	seq     uint64        // guarded by mu
	lastDue [2]time.Time  // guarded by mu: per direction, of in-order datagrams
	wake    chan struct{} // signalled when the head may have changed
}

type item struct {
	due     time.Time
	seq     uint64
	deliver func()
}

type queue []item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return q[i].seq < q[j].seq
	}
	return q[i].due.Before(q[j].due)
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*q = old[:len(old)-1]
	return it
}

func newScheduler() *scheduler { return &scheduler{wake: make(chan struct{}, 1)} }

// add schedules deliver at due. Unless reorder is set, a datagram never
// leaves before an earlier in-order one of the same direction (jitter
// does not reorder, as on a real path).
func (s *scheduler) add(up bool, due time.Time, reorder bool, deliver func()) {
	dir := 0
	if up {
		dir = 1
	}
	s.mu.Lock()
	if !reorder {
		if due.Before(s.lastDue[dir]) {
			due = s.lastDue[dir]
		}
		s.lastDue[dir] = due
	}
	s.seq++
	heap.Push(&s.q, item{due: due, seq: s.seq, deliver: deliver})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers until done is closed; what is still queued is dropped.
func (s *scheduler) run(done <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		var wait time.Duration = time.Hour
		var ready []func()
		now := time.Now()
		for s.q.Len() > 0 {
			if d := s.q[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			ready = append(ready, heap.Pop(&s.q).(item).deliver)
		}
		s.mu.Unlock()
		for _, f := range ready {
			f()
		}
		if len(ready) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-done:
			return
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
	}
}
