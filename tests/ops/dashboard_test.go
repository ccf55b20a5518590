package ops

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	ID      int    `json:"id"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "examples", "grafana", "auditpipe.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("auditpipe.json: %v", err)
	}
	return d
}

// dashboardExprs returns every panel query, with Grafana's variables
// replaced by what they stand for, ready for Prometheus' query API.
func dashboardExprs(d dashboard) map[string]string {
	r := strings.NewReplacer("$exporter", ".*", "$__rate_interval", "1m", "$__range", "5m")
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title+": "+tg.Expr] = r.Replace(tg.Expr)
		}
	}
	return out
}

// The dashboard has the rows operators look for, every panel queries
// metrics the binaries expose, and panel ids are unique.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q", d.UID, d.Title)
	}
	var rows []string
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			if bad := unknownNames(tg.Expr); len(bad) > 0 {
				t.Errorf("panel %q queries unknown metrics %v", p.Title, bad)
			}
		}
	}
	want := []string{"Throughput", "Lag", "SIEM failures", "Batch interval", "Back-pressure", "Paused"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("rows %q, want %q", rows, want)
	}
	// The panels that answer the product page's four alerts.
	all := ""
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			all += tg.Expr + "\n"
		}
	}
	for _, m := range []string{"declaragent_audit_backpressure_paused_total", "declaragent_audit_export_failures_total",
		"declaragent_audit_batch_interval_ms", "declaragent_audit_export_last_seq", "declaragent_audit_last_seq",
		"auditpipe_export_lag_records", "declaragent_audit_export_paused", "declaragent_audit_export_acked_total"} {
		if !strings.Contains(all, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] || !vars["exporter"] {
		t.Errorf("template variables %v, want datasource and exporter", vars)
	}
	t.Logf("%d rows, %d panels, %d queries", len(rows), len(d.Panels)-len(rows), queries)
}
