package audit

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cellgrid/cellgrid/internal/db"
	"github.com/cellgrid/cellgrid/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestAppendListAndRollback(t *testing.T) {
	d := testenv.NewDatabase(t)
	ctx := context.Background()
	actor := uuid.New()
	if _, err := Record(ctx, d.Pool, Entry{ActorID: actor, ActorRole: "admin", Action: "a.one", Target: "x"}, nil, map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	// An action whose transaction fails leaves no audit row.
	boom := errors.New("boom")
	err := db.RunTx(ctx, d.Pool, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := Append(ctx, tx, Entry{ActorID: actor, ActorRole: "admin", Action: "a.two"}, nil, nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("tx: %v", err)
	}
	e2, err := Record(ctx, d.Pool, Entry{ActorID: actor, ActorRole: "support", Action: "a.three", Outcome: OutcomeFailed},
		map[string]string{"state": "healthy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := List(ctx, d.Pool, "", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 1 || p.Entries[0].ID != e2.ID || p.Entries[0].Outcome != OutcomeFailed ||
		string(p.Entries[0].Before) != `{"state": "healthy"}` || string(p.Entries[0].After) != "null" || p.NextCursor == "" {
		t.Fatalf("first page %+v", p)
	}
	p, err = List(ctx, d.Pool, p.NextCursor, "", 1)
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Action != "a.one" || p.Entries[0].Outcome != OutcomeOK || p.NextCursor != "" {
		t.Fatalf("second page %+v %v", p, err)
	}
	if p, err := List(ctx, d.Pool, "", "a.two", 10); err != nil || len(p.Entries) != 0 {
		t.Fatalf("the rolled-back action is in the log: %+v %v", p, err)
	}
	if _, err := List(ctx, d.Pool, "!!", "", 10); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}
