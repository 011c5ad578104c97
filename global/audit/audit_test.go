package audit

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestNothingRewritesTheLog keeps the log append-only: no Go source of
// the module (tests aside) updates or deletes ops_audit rows, and the only
// statement touching the table outside SELECTs is this package's INSERT.
func TestNothingRewritesTheLog(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`(?is)(UPDATE\s+ops_audit|DELETE\s+FROM\s+ops_audit|TRUNCATE\s+(TABLE\s+)?ops_audit|ALTER\s+TABLE\s+ops_audit)`)
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		seen++
		if loc := bad.FindIndex(b); loc != nil {
			t.Errorf("%s rewrites the audit log: %q", path, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 50 {
		t.Fatalf("scanned only %d files from %s", seen, root)
	}
	if !bad.MatchString("x := `DELETE FROM ops_audit WHERE 1=1`") {
		t.Fatal("the pattern misses a DELETE")
	}
}
