package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// prometheusBuiltins are series Prometheus makes itself, allowed in
// dashboard variables.
var prometheusBuiltins = map[string]bool{"up": true}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Time struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct {
		H, W, X, Y *int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

// panelTypes are the Grafana panel types the dashboards may use.
var panelTypes = []string{"row", "timeseries", "table", "stat", "gauge", "bargauge", "text"}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob("grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana (%v)", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(b)))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// checkDashboard returns what is wrong with d's structure: what Grafana
// needs to import it and what makes its panels show data.
func checkDashboard(d dashboard) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.UID == "" || len(d.UID) > 40 {
		bad("uid %q: 1..40 characters", d.UID)
	}
	if d.Title == "" {
		bad("no title")
	}
	if d.SchemaVersion < 30 {
		bad("schemaVersion %d: want a current schema (≥ 30)", d.SchemaVersion)
	}
	if d.Time.From == "" || d.Time.To == "" {
		bad("no default time range")
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		bad(`no "datasource" variable of type datasource for prometheus`)
	}
	if len(d.Panels) == 0 {
		bad("no panels")
	}
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if p.ID <= 0 || ids[p.ID] {
				bad("%s: id missing or repeated", where)
			}
			ids[p.ID] = true
			if p.Title == "" {
				bad("%s: no title", where)
			}
			if !slices.Contains(panelTypes, p.Type) {
				bad("%s: type %q not one of %v", where, p.Type, panelTypes)
			}
			g := p.GridPos
			if g == nil || g.H == nil || g.W == nil || g.X == nil || g.Y == nil {
				bad("%s: gridPos needs h, w, x, y", where)
			} else if *g.W < 1 || *g.H < 1 || *g.X < 0 || *g.Y < 0 || *g.X+*g.W > 24 {
				bad("%s: gridPos %d,%d %dx%d outside the 24-column grid", where, *g.X, *g.Y, *g.W, *g.H)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Type == "text" {
				continue
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				bad("%s: datasource must be prometheus ${datasource}", where)
			}
			if len(p.Targets) == 0 {
				bad("%s: no targets", where)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					bad("%s: refId %q missing or repeated", where, tg.RefID)
				}
				refs[tg.RefID] = true
				if strings.TrimSpace(tg.Expr) == "" {
					bad("%s: target %s has no expr", where, tg.RefID)
				}
				if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
					bad("%s: target %s: unbalanced brackets in %q", where, tg.RefID, tg.Expr)
				}
			}
		}
	}
	walk(d.Panels)
	return errs
}

func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]string{}
	for f, d := range loadDashboards(t) {
		for _, err := range checkDashboard(d) {
			t.Errorf("%s: %v", f, err)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %s", f, other, d.UID)
		}
		uids[d.UID] = f
	}
	// The check can fail: a broken copy is refused.
	var d dashboard
	_ = json.Unmarshal([]byte(`{"uid":"x","title":"t","schemaVersion":39,"panels":[{"id":1,"type":"timeseries","title":"p","gridPos":{"h":8,"w":30,"x":0,"y":0},"targets":[{"refId":"A","expr":"rate(x[5m]"}]}]}`), &d)
	if errs := checkDashboard(d); len(errs) < 4 {
		t.Errorf("a broken dashboard passed with only %v", errs)
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestEveryMetricUsedIsRegistered fails when a dashboard panel or an
// alert rule names a metric no code registers (a renamed or removed
// metric leaves a panel empty and an alert that can never fire).
func TestEveryMetricUsedIsRegistered(t *testing.T) {
	reg := registeredMetrics(t, moduleRoot(t))
	used := map[string][]string{} // metric -> where
	for f, d := range loadDashboards(t) {
		var walk func(ps []panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				for _, tg := range p.Targets {
					for _, m := range metricsIn(tg.Expr) {
						used[m] = append(used[m], fmt.Sprintf("%s panel %q", f, p.Title))
					}
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(map[string]any); ok {
				if s, ok := q["query"].(string); ok {
					// label_values(selector, label): only the selector names metrics.
					sel, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(s, "label_values("), ")"), ",")
					for _, m := range metricsIn(sel) {
						if !prometheusBuiltins[m] {
							used[m] = append(used[m], fmt.Sprintf("%s variable %s", f, v.Name))
						}
					}
				}
			}
		}
	}
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			for _, m := range metricsIn(r.Expr) {
				used[m] = append(used[m], "alerts.yml "+r.Alert+r.Record)
			}
		}
	}
	if n == 0 || len(used) < 10 {
		t.Fatalf("found %d rules and %d metric names: the parsing is broken", n, len(used))
	}
	for m, where := range used {
		if _, ok := reg[m]; !ok {
			t.Errorf("metric %s is used by %s but no code registers it", m, strings.Join(where, ", "))
		}
	}
}

// TestPromtoolAcceptsTheRules runs `promtool check rules` and the rules'
// unit tests.
func TestPromtoolAcceptsTheRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run (as root) `apt-get update && apt-get install -y prometheus` (Debian's prometheus package provides promtool)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
