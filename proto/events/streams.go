package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureMatchStream creates a cell's match stream (events.MatchStream,
// subjects MatchSubjects, placed in the cell's own cluster, kept 7 days)
// when it does not exist yet. The cell and its DGSs both call it; whoever
// comes first creates it and the others find it in place. duplicates is the
// de-duplication window that makes a result published twice (same msg id)
// stored once.
func EnsureMatchStream(ctx context.Context, js jetstream.JetStream, cell string, duplicates time.Duration) error {
	name := MatchStream(cell)
	_, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{MatchSubjects(cell)},
			Storage:    jetstream.FileStorage,
			Duplicates: duplicates,
			MaxAge:     7 * 24 * time.Hour,
			Placement:  &jetstream.Placement{Cluster: cell},
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("match stream %s: %w", name, err)
	}
	return nil
}
