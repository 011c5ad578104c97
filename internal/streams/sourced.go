package streams

import (
	"context"
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

// EnsureStream creates or updates the stream (placement, sources, limits).
func (s SourcedStream) EnsureStream(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        s.Name,
		Description: s.Description,
		Storage:     jetstream.FileStorage,
		Replicas:    s.Replicas,
		Placement:   &jetstream.Placement{Cluster: s.Cluster},
		MaxAge:      s.MaxAge,
		Duplicates:  s.Duplicates,
		Sources:     s.Sources,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	return nil
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
