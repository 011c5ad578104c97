package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// metricName is what a Prometheus metric name looks like in cellgrid.
var metricName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)+$`)

// registeredMetrics scans the module's Go files (tests and testdata
// excluded) for the metrics the code registers: the Namespace, Subsystem
// and Name of every prometheus.*Opts literal, the first argument of every
// prometheus.NewDesc, and, where an Opts literal takes its Name from a
// variable (a table of counters, as dgs/metrics.go has), the metric-like
// string literals that open a composite literal in the same file. Every
// name is returned with the series names Prometheus derives from it
// (_bucket, _sum, _count), since a histogram's kind is not known here.
func registeredMetrics(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(name, where string) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if _, ok := out[name+suffix]; !ok {
				out[name+suffix] = where
			}
		}
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != root && (n == "testdata" || strings.HasPrefix(n, ".") || n == "examples" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		tableNames := false
		var firsts []string // string literals opening a composite literal
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if len(n.Elts) > 0 {
					if s, ok := stringLit(n.Elts[0]); ok && metricName.MatchString(s) {
						firsts = append(firsts, s)
					}
				}
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || !isPkg(sel.X, "prometheus") || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				var ns, sub, name string
				literalName := false
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, _ := kv.Key.(*ast.Ident)
					if key == nil {
						continue
					}
					s, isLit := stringLit(kv.Value)
					switch key.Name {
					case "Namespace":
						ns = s
					case "Subsystem":
						sub = s
					case "Name":
						name, literalName = s, isLit
					}
				}
				if !literalName {
					tableNames = true
					return true
				}
				full := name
				if sub != "" {
					full = sub + "_" + full
				}
				if ns != "" {
					full = ns + "_" + full
				}
				add(full, rel)
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if ok && isPkg(sel.X, "prometheus") && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
					if s, ok := stringLit(n.Args[0]); ok {
						add(s, rel)
					}
				}
			}
			return true
		})
		if tableNames {
			for _, s := range firsts {
				add(s, rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func isPkg(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// PromQL pieces that are not metric names.
var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promLabelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords  = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// metricsIn returns the metric names a PromQL expression selects: every
// identifier that is not a function or aggregation (followed by "("), a
// keyword, a label (inside {} or a by/without/on list) or a number.
func metricsIn(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	for {
		next := promMatchers.ReplaceAllString(e, " ")
		if next == e {
			break
		}
		e = next
	}
	e = promRanges.ReplaceAllString(e, " ")
	e = promLabelList.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] == '.' || e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9') {
			continue // part of a number such as 1e3 or 0.5
		}
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(id)] {
			continue
		}
		out = append(out, id)
	}
	return out
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(dir) // deploy/ sits at the module root
}

func TestMetricExtraction(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.99, sum by (le, instance) (rate(cellgrid_fleet_allocation_seconds_bucket{instance=~"$instance"}[5m])))`: "cellgrid_fleet_allocation_seconds_bucket",
		`sum by (instance) (rate(a_total{result="x"}[5m])) / sum by (instance) (rate(b_total[5m])) > 0.05`:                            "a_total b_total",
		`max by (cell, region) (cellgrid_topology_cell_state{state="failed"}) == 1`:                                                   "cellgrid_topology_cell_state",
		`rate(x_total[1m]) + on (instance) group_left (cell) y_info and bool z offset 5m`:                                             "x_total y_info z",
		`1e3 * up`: "up",
	} {
		if got := strings.Join(metricsIn(expr), " "); got != want {
			t.Errorf("metricsIn(%q) = %q, want %q", expr, got, want)
		}
	}
	reg := registeredMetrics(t, moduleRoot(t))
	// One of each way the code registers a metric.
	for _, name := range []string{
		"cellgrid_auth_logins_total",                   // Namespace + Subsystem + Name
		"relay_forwarded_packets_total",                // Name
		"cellgrid_fleet_allocation_seconds_bucket",     // a histogram's series
		"dgs_joins_total",                              // a table of names (dgs/metrics.go)
		"cellgrid_jetstream_consumer_pending_messages", // prometheus.NewDesc
	} {
		if _, ok := reg[name]; !ok {
			t.Errorf("the scan missed %s", name)
		}
	}
	if _, ok := reg["cellgrid_no_such_metric_total"]; ok {
		t.Error("the scan invents names")
	}
}
