package archtest

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Package is one directory's package as Load sees it.
type Package struct {
	Path        string   // full import path
	Name        string   // package name of the non-test files ("" if none)
	Imports     []string // imports of non-test files, sorted, unique
	TestImports []string // imports of _test.go files (internal and external), sorted, unique
	HasDoc      bool     // some non-test file has a package doc comment
}

// Graph is the import graph of one module tree.
type Graph struct {
	Module   string              // module path, e.g. github.com/cellgrid/cellgrid
	Packages map[string]*Package // by full import path
}

// Violation is one broken rule.
type Violation struct {
	Rule    string // see the package doc
	Package string // module-relative path of the offending package
	Detail  string
}

func (v Violation) String() string { return v.Rule + ": " + v.Package + ": " + v.Detail }

// ProtoAllowedImports are the third-party imports proto/ may use: small
// codecs, the NATS client whose JetStream stream configuration
// proto/events names, and the NATS JWT codec of the .creds format
// (proto/natscreds).
var ProtoAllowedImports = []string{
	"github.com/google/uuid",
	"github.com/nats-io/jwt/v2",
	"github.com/nats-io/nats.go",
	"github.com/nats-io/nats.go/jetstream",
}

// domains are the top-level trees internal/ must never import.
var domains = []string{"cell", "global", "dgs", "relay", "jobs", "topology", "client", "devstack", "cmd", "e2e"}

// serverTrees are the top-level trees client/ must never import.
var serverTrees = []string{"cell", "global", "relay", "dgs", "jobs", "topology", "devstack", "cmd", "e2e", "internal"}

// Load parses every Go file under root (a module whose path is module),
// skipping testdata, hidden and underscore directories and nested modules.
func Load(root, module string) (*Graph, error) {
	g := &Graph{Module: module, Packages: map[string]*Package{}}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module (examples/)
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return fmt.Errorf("archtest load: %w", err)
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		ip := module
		if rel != "." {
			ip = module + "/" + filepath.ToSlash(rel)
		}
		p := g.Packages[ip]
		if p == nil {
			p = &Package{Path: ip}
			g.Packages[ip] = p
		}
		test := strings.HasSuffix(path, "_test.go")
		if !test {
			p.Name = f.Name.Name
			p.HasDoc = p.HasDoc || f.Doc != nil
		}
		for _, is := range f.Imports {
			imp, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return fmt.Errorf("archtest load %s: %w", path, err)
			}
			if test {
				p.TestImports = append(p.TestImports, imp)
			} else {
				p.Imports = append(p.Imports, imp)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, p := range g.Packages {
		slices.Sort(p.Imports)
		p.Imports = slices.Compact(p.Imports)
		slices.Sort(p.TestImports)
		p.TestImports = slices.Compact(p.TestImports)
	}
	return g, nil
}

// rel returns the module-relative form of import path ip, and whether ip is
// in the module at all.
func (g *Graph) rel(ip string) (string, bool) {
	if ip == g.Module {
		return ".", true
	}
	r, ok := strings.CutPrefix(ip, g.Module+"/")
	return r, ok
}

// under reports whether module-relative path r is tree or inside it.
func under(r string, trees ...string) bool {
	for _, t := range trees {
		if r == t || strings.HasPrefix(r, t+"/") {
			return true
		}
	}
	return false
}

// stdlib reports whether ip looks like a standard library import (no dot
// in its first element), the rule the go command itself uses.
func stdlib(ip string) bool {
	first, _, _ := strings.Cut(ip, "/")
	return !strings.Contains(first, ".")
}

// Check returns every violation of the rules in the package doc, sorted.
func Check(g *Graph) []Violation {
	var out []Violation
	add := func(rule, pkg, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Package: pkg, Detail: fmt.Sprintf(format, args...)})
	}
	for ip, p := range g.Packages {
		r, _ := g.rel(ip)
		all := append(slices.Clone(p.Imports), p.TestImports...)
		for _, imp := range all {
			ir, in := g.rel(imp)
			if !in {
				continue
			}
			if under(r, "internal") && under(ir, domains...) {
				add("internal-imports-domain", r, "imports %s", ir)
			}
			if under(r, "dgs") && under(ir, "cell", "jobs") {
				add("dgs-imports-cell-or-jobs", r, "imports %s", ir)
			}
			if under(ir, "devstack") && !under(r, "devstack", "cmd", "e2e") {
				add("devstack-imported", r, "imports %s (only cmd/ and e2e/ may)", ir)
			}
		}
		for _, imp := range p.Imports {
			ir, in := g.rel(imp)
			if under(r, "client") && in && under(ir, serverTrees...) {
				add("client-imports-server", r, "imports %s", ir)
			}
			if under(r, "proto") && !stdlib(imp) && !(in && under(ir, "proto")) && !slices.Contains(ProtoAllowedImports, imp) {
				add("proto-imports-beyond-allowlist", r, "imports %s", imp)
			}
		}
		if p.Name != "" && p.Name != "main" && !p.HasDoc {
			add("missing-package-doc", r, "package %s has no doc comment (add a doc.go)", p.Name)
		}
		if under(r, "dgs/sdk", "client") && p.Name != "" {
			if chain := g.pathTo(ip, func(r string) bool { return under(r, "internal") }); chain != nil {
				add("public-sdk-depends-on-internal", r, "reaches internal/ via %s", strings.Join(chain, " -> "))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// pathTo returns a shortest chain of non-test imports inside the module
// from package from to a package whose module-relative path matches target
// (module-relative paths, from excluded), or nil when there is none.
func (g *Graph) pathTo(from string, target func(rel string) bool) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := g.Packages[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			ir, in := g.rel(imp)
			if !in {
				continue
			}
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = cur
			if target(ir) {
				var chain []string
				for n := imp; n != from; n = prev[n] {
					r, _ := g.rel(n)
					chain = append([]string{r}, chain...)
				}
				return chain
			}
			queue = append(queue, imp)
		}
	}
	return nil
}
