package dgs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cellgrid/cellgrid/dgs/sdk"
	"github.com/cellgrid/cellgrid/proto/events"
)

// reporter publishes match results and does not give up: a result is
// kept (in memory, and in the spool folder when one is set) and retried
// until JetStream acked it. Retries are safe: the message id is the
// session and server.
type reporter struct {
	kit               *sdk.SDK
	spool             string
	attempt, retryMax time.Duration
	log               *slog.Logger
}

func (r *reporter) spoolPath(session string) string {
	return filepath.Join(r.spool, "result-"+session+".json")
}

// report publishes res, retrying with backoff until it is published
// (true), the allocation was withdrawn (true: nothing to publish), or ctx
// ends (false; a spooled result stays on disk for the next run).
func (r *reporter) report(ctx context.Context, res events.MatchResult) bool {
	if r.spool != "" {
		if err := r.save(res); err != nil {
			r.log.Error("dgs: spool result", "session", res.SessionID, "err", err)
		}
	}
	backoff, start := 100*time.Millisecond, time.Now()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, r.attempt)
		err := r.kit.ReportResult(actx, res)
		cancel()
		if err == nil || errors.Is(err, sdk.ErrAllocationCancelled) {
			if errors.Is(err, sdk.ErrAllocationCancelled) {
				r.log.Info("dgs: result of a withdrawn allocation not published", "session", res.SessionID)
			} else if attempt > 1 {
				r.log.Info("dgs: match result published after retries", "session", res.SessionID, "attempts", attempt, "after", time.Since(start).Round(time.Millisecond))
			}
			if r.spool != "" {
				_ = os.Remove(r.spoolPath(res.SessionID))
			}
			return true
		}
		r.log.Warn("dgs: report result (will retry)", "session", res.SessionID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			r.log.Error("dgs: match result not published yet; stopping", "session", res.SessionID, "spooled", r.spool != "")
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.retryMax)
	}
}

func (r *reporter) save(res events.MatchResult) error {
	if err := os.MkdirAll(r.spool, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	tmp := r.spoolPath(res.SessionID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.spoolPath(res.SessionID))
}

// flushSpool publishes every result a previous run left in the spool.
func (r *reporter) flushSpool(ctx context.Context) error {
	if r.spool == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(r.spool, "result-*.json"))
	if err != nil {
		return fmt.Errorf("dgs: spool: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("dgs: spool: %w", err)
		}
		var res events.MatchResult
		if err := json.Unmarshal(b, &res); err != nil || res.SessionID == "" {
			r.log.Error("dgs: unreadable spooled result: removed", "file", f, "err", err)
			_ = os.Remove(f)
			continue
		}
		if !r.report(ctx, res) {
			return fmt.Errorf("dgs: spooled result %s: %w", res.SessionID, ctx.Err())
		}
	}
	return nil
}
