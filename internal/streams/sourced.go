package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SourcedStream is a stream in the global cluster that sources one stream
// per cell (match results, telemetry), read by one durable consumer with
// explicit acks. It is how the global layer consumes what the cells publish.
type SourcedStream struct {
	Name        string
	Description string
	Cluster     string
	Replicas    int
	MaxAge      time.Duration
	Duplicates  time.Duration // 0: the server default
	// Sources lists the cells' streams, with filters where needed.
	Sources []*jetstream.StreamSource

	Durable       string
	AckWait       time.Duration
	MaxAckPending int
}

// EnsureStream creates or updates the stream (placement, limits) so that
// it sources at least s.Sources. Sources the stream already has are kept:
// cells added while the process ran (AddSources) survive a restart with a
// shorter list, and two writers adding different sources at once both
// win (each re-reads the stream after its update and tries again while a
// source it wants is missing).
func (s SourcedStream) EnsureStream(ctx context.Context, js jetstream.JetStream) error {
	const attempts = 10
	for range attempts {
		var current []*jetstream.StreamSource
		st, err := js.Stream(ctx, s.Name)
		switch {
		case err == nil:
			current = st.CachedInfo().Config.Sources
		case errors.Is(err, jetstream.ErrStreamNotFound):
		default:
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
		want := union(current, s.Sources)
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        s.Name,
			Description: s.Description,
			Storage:     jetstream.FileStorage,
			Replicas:    s.Replicas,
			Placement:   &jetstream.Placement{Cluster: s.Cluster},
			MaxAge:      s.MaxAge,
			Duplicates:  s.Duplicates,
			Sources:     want,
		}); err != nil {
			// A concurrent update or create answered in place of ours
			// (its sources, not ours; or the name just got taken): read
			// the stream again and retry.
			if !errors.Is(err, jetstream.ErrStreamSourceNotSupported) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return fmt.Errorf("stream %s: %w", s.Name, err)
			}
		}
		// Another writer may have updated the stream from an older read
		// between our read and our update: read again, redo if one we
		// want is gone.
		st, err = js.Stream(ctx, s.Name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
		have := st.CachedInfo().Config.Sources
		if len(union(have, want)) == len(union(have, nil)) {
			return nil
		}
	}
	return fmt.Errorf("stream %s: sources still missing after %d updates (concurrent writers)", s.Name, attempts)
}

// AddSources makes the stream source add too (keeping every source it
// has); safe to call again with the same sources and from several
// goroutines or processes at once.
func (s SourcedStream) AddSources(ctx context.Context, js jetstream.JetStream, add ...*jetstream.StreamSource) error {
	s.Sources = union(s.Sources, add)
	return s.EnsureStream(ctx, js)
}

// union returns a followed by the sources of b that a lacks; a source is
// identified by its stream name and filter subject.
func union(a, b []*jetstream.StreamSource) []*jetstream.StreamSource {
	key := func(src *jetstream.StreamSource) string { return src.Name + "\x00" + src.FilterSubject }
	seen := make(map[string]bool, len(a)+len(b))
	out := make([]*jetstream.StreamSource, 0, len(a)+len(b))
	for _, list := range [][]*jetstream.StreamSource{a, b} {
		for _, src := range list {
			if src == nil || seen[key(src)] {
				continue
			}
			seen[key(src)] = true
			out = append(out, src)
		}
	}
	return out
}

// Consumer ensures the stream and returns its durable consumer: explicit
// acks, redelivered without limit after AckWait.
func (s SourcedStream) Consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	if err := s.EnsureStream(ctx, js); err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, s.Name, jetstream.ConsumerConfig{
		Durable:       s.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: s.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", s.Durable, s.Name, err)
	}
	return cons, nil
}
