package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cellgrid/cellgrid/cell/fleet"
	"github.com/hashicorp/nomad/api"
)

// NomadLauncher implements fleet.Launcher by dispatching the parameterized
// DGS job (see DGSJob) once per game server.
//
// The job definition fixes the command, the NATS URL and the extra
// arguments: of a LaunchSpec only ID, Cell and Version.Name reach the
// server (as dispatch meta). Version.Command/Args and NATSURL are ignored.
type NomadLauncher struct {
	Client *api.Client
	// JobID of the parameterized DGS job; default DefaultDGSJobID.
	JobID string
	// Region and Namespace of the requests (empty: the agent's).
	Region, Namespace string
	// WaitTime bounds one blocking query; default 5m.
	WaitTime time.Duration
	// RetryDelay is the pause after a failed allocation query; default 1s.
	RetryDelay time.Duration

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

// nomadHandle is one dispatched DGS job.
type nomadHandle struct {
	id        string // dispatched job ID
	done      chan struct{}
	closeOnce sync.Once
	cancel    context.CancelFunc
}

func (h *nomadHandle) Exited() <-chan struct{} { return h.done }

func (h *nomadHandle) exit() { h.closeOnce.Do(func() { close(h.done) }) }

// DispatchedJobID returns the Nomad job ID behind a NomadLauncher handle, or "".
func DispatchedJobID(h fleet.Handle) string {
	if nh, ok := h.(*nomadHandle); ok {
		return nh.id
	}
	return ""
}

func (l *NomadLauncher) init() {
	l.once.Do(func() { l.ctx, l.cancel = context.WithCancel(context.Background()) })
}

// Close stops the allocation watchers of every handle (their Exited
// channels stay open). The dispatched jobs keep running.
func (l *NomadLauncher) Close() {
	l.init()
	l.cancel()
}

func (l *NomadLauncher) jobID() string {
	if l.JobID == "" {
		return DefaultDGSJobID
	}
	return l.JobID
}

func (l *NomadLauncher) writeOpts(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{Region: l.Region, Namespace: l.Namespace}).WithContext(ctx)
}

// Start implements fleet.Launcher: it dispatches the DGS job with meta
// {cell, dgs_id, version} and returns once Nomad accepted the dispatch.
// A watcher then follows the dispatched job's allocations and closes
// Exited when they are terminal.
func (l *NomadLauncher) Start(ctx context.Context, spec fleet.LaunchSpec) (fleet.Handle, error) {
	if l.Client == nil {
		return nil, errors.New("nomad launcher: nil client")
	}
	if spec.ID == "" || spec.Cell == "" || spec.Version.Name == "" {
		return nil, errors.New("nomad launcher: id, cell and version name are required")
	}
	l.init()
	meta := map[string]string{MetaCell: spec.Cell, MetaDGSID: spec.ID, MetaVersion: spec.Version.Name}
	resp, _, err := l.Client.Jobs().Dispatch(l.jobID(), meta, nil, "", l.writeOpts(ctx))
	if err != nil {
		return nil, fmt.Errorf("nomad launcher: dispatch dgs %s: %w", spec.ID, err)
	}
	wctx, cancel := context.WithCancel(l.ctx)
	h := &nomadHandle{id: resp.DispatchedJobID, done: make(chan struct{}), cancel: cancel}
	go l.watch(wctx, h)
	return h, nil
}

// watch follows the allocations of h's job with blocking queries until
// they are all terminal (or gone after having existed), then closes Exited.
func (l *NomadLauncher) watch(ctx context.Context, h *nomadHandle) {
	defer h.cancel()
	wait := l.WaitTime
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	retry := l.RetryDelay
	if retry <= 0 {
		retry = time.Second
	}
	var index uint64
	seen := false
	for ctx.Err() == nil {
		q := &api.QueryOptions{
			Region:    l.Region,
			Namespace: l.Namespace,
			// With no allocation yet Nomad answers LastIndex 0, and
			// WaitIndex 0 does not block: clamp to 1 or we busy-poll.
			WaitIndex: max(index, 1),
			WaitTime:  wait,
		}
		allocs, qm, err := l.Client.Jobs().Allocations(h.id, true, q.WithContext(ctx))
		if err != nil {
			if seen && isNotFound(err) { // job purged after it ran
				h.exit()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		if qm.LastIndex < index { // index went backwards (leader change): restart
			index = 0
		} else {
			index = qm.LastIndex
		}
		if len(allocs) > 0 {
			seen = true
		}
		if seen && allTerminal(allocs) {
			h.exit()
			return
		}
	}
}

func isNotFound(err error) bool {
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode() == 404
	}
	return false
}

// allTerminal reports whether every allocation has ended on its client
// (an empty list counts: the allocations were garbage collected).
func allTerminal(allocs []*api.AllocationListStub) bool {
	for _, a := range allocs {
		switch a.ClientStatus {
		case api.AllocClientStatusComplete, api.AllocClientStatusFailed, api.AllocClientStatusLost:
		default:
			return false
		}
	}
	return true
}

// Stop implements fleet.Launcher: it deregisters (and purges) the
// dispatched job, then waits until the watcher saw its allocations end or
// ctx ends. Nomad applies the task's kill_timeout between SIGTERM and
// SIGKILL.
func (l *NomadLauncher) Stop(ctx context.Context, h fleet.Handle) error {
	nh, ok := h.(*nomadHandle)
	if !ok {
		return fmt.Errorf("nomad launcher: foreign handle %T", h)
	}
	select {
	case <-nh.done:
		return nil
	default:
	}
	if _, _, err := l.Client.Jobs().Deregister(nh.id, true, l.writeOpts(ctx)); err != nil && !isNotFound(err) {
		return fmt.Errorf("nomad launcher: deregister %s: %w", nh.id, err)
	}
	// A dispatch that was never placed (e.g. every node drained) has no
	// allocation to wait for, and never will once deregistered.
	// (WaitIndex 1: answers at once when allocations exist, else after
	// the short wait.)
	q := (&api.QueryOptions{Region: l.Region, Namespace: l.Namespace, WaitIndex: 1, WaitTime: 200 * time.Millisecond}).WithContext(ctx)
	if allocs, _, err := l.Client.Jobs().Allocations(nh.id, true, q); err == nil && len(allocs) == 0 {
		nh.exit()
	}
	select {
	case <-nh.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
