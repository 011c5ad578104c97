package streams_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellgrid/cellgrid/internal/streams"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func sourceNames(t *testing.T, js jetstream.JetStream, name string) []string {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range st.CachedInfo().Config.Sources {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// TestAddSourcesNeverDrops: a sourced stream that starts with no source
// gains sources from several goroutines at once, none is lost, adding one
// twice is a no-op, and ensuring the stream again with a shorter list (a
// restart with the initial --cells) keeps every source it gained.
func TestAddSourcesNeverDrops(t *testing.T) {
	testenv.CheckGoroutines(t)
	_, nc := testenv.NewNATS(t, "global")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 6
	var want []string
	for i := range n {
		name := fmt.Sprintf("CELL_%d", i)
		want = append(want, name)
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{fmt.Sprintf("cell.%d.>", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	s := streams.SourcedStream{Name: "SOURCED", Cluster: "global", Replicas: 1, MaxAge: time.Hour, Durable: "d", AckWait: time.Second}
	if err := s.EnsureStream(ctx, js); err != nil {
		t.Fatalf("no sources at first: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, name := range want {
		wg.Go(func() { errs <- s.AddSources(ctx, js, &jetstream.StreamSource{Name: name}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := sourceNames(t, js, "SOURCED"); !slices.Equal(got, want) {
		t.Fatalf("after concurrent AddSources: %v, want %v", got, want)
	}
	if err := s.AddSources(ctx, js, &jetstream.StreamSource{Name: want[2]}); err != nil {
		t.Fatal(err)
	}
	first := s
	first.Sources = []*jetstream.StreamSource{{Name: want[0]}}
	if _, err := first.Consumer(ctx, js); err != nil {
		t.Fatal(err)
	}
	if got := sourceNames(t, js, "SOURCED"); !slices.Equal(got, want) {
		t.Fatalf("after re-adding one and ensuring with the first only: %v, want %v", got, want)
	}
	// Every source delivers.
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("cell.%d.x", i), []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		st, err := js.Stream(ctx, "SOURCED")
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != n {
			return fmt.Errorf("sourced %d messages, want %d", info.State.Msgs, n)
		}
		return nil
	})
}
