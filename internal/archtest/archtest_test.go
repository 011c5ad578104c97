package archtest

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// moduleRoot finds the enclosing go.mod and returns its directory and
// module path.
func moduleRoot(t *testing.T) (string, string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.TrimSpace(m)
				}
			}
			t.Fatalf("%s/go.mod has no module line", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// TestRepositoryLayering fails on any layering or package-doc violation in
// the repository.
func TestRepositoryLayering(t *testing.T) {
	root, module := moduleRoot(t)
	g, err := Load(root, module)
	if err != nil {
		t.Fatal(err)
	}
	// Guard against a loader that silently sees nothing.
	for _, p := range []string{"dgs/sdk", "client", "proto/wire", "internal/httpapi", "devstack", "cmd/cellgrid", "e2e"} {
		if g.Packages[module+"/"+p] == nil {
			t.Fatalf("loader did not find %s", p)
		}
	}
	for _, v := range Check(g) {
		t.Error(v)
	}
}

// TestFixtureBreaksEveryRule runs the checker on testdata/badtree, which
// breaks each rule once (and has allowed imports beside them): every
// violation, and only those, must be reported.
func TestFixtureBreaksEveryRule(t *testing.T) {
	g, err := Load("testdata/badtree", "example.com/fix")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range Check(g) {
		got = append(got, v.String())
	}
	want := []string{
		"client-imports-server: client/gameconn: imports internal/plumb",
		"client-imports-server: client: imports relay",
		"devstack-imported: relay: imports devstack (only cmd/ and e2e/ may)",
		"dgs-imports-cell-or-jobs: dgs/game: imports cell",
		"dgs-imports-cell-or-jobs: dgs/game: imports jobs",
		"internal-imports-domain: internal/plumb: imports cell",
		"internal-imports-domain: internal/plumb: imports global",
		"missing-package-doc: cell: package cell has no doc comment (add a doc.go)",
		"proto-imports-beyond-allowlist: proto/events: imports github.com/pkg/errors",
		"public-sdk-depends-on-internal: client/gameconn: reaches internal/ via internal/plumb",
		"public-sdk-depends-on-internal: client: reaches internal/ via client/gameconn -> internal/plumb",
		"public-sdk-depends-on-internal: dgs/sdk: reaches internal/ via dgs/lifecycle -> internal/plumb",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	rules := map[string]bool{}
	for _, v := range Check(g) {
		rules[v.Rule] = true
	}
	for _, r := range []string{"internal-imports-domain", "dgs-imports-cell-or-jobs", "client-imports-server",
		"proto-imports-beyond-allowlist", "devstack-imported", "public-sdk-depends-on-internal", "missing-package-doc"} {
		if !rules[r] {
			t.Errorf("rule %s never fired on the fixture", r)
		}
	}
}

// TestPublicSDKsBuildWithoutInternal asks the go command itself, as the
// issue states the rule: `go list -deps ./dgs/sdk ./client` lists nothing
// under internal/, so a game in another module can import both.
func TestPublicSDKsBuildWithoutInternal(t *testing.T) {
	root, module := moduleRoot(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-deps", "./dgs/sdk", "./client", "./client/gameconn")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/proto/events") {
		t.Fatalf("go list -deps output lacks proto/events; got %d lines", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, module+"/") && strings.Contains(d, "/internal/") {
			t.Errorf("public SDK depends on %s", d)
		}
	}
}
