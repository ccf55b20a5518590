package metrics_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// TestTableMatchesContract: the contract names of the table of names are
// exactly docs/contract.md section 4's, with its types and labels (the
// fixed external contract: a rename in either fails here).
func TestTableMatchesContract(t *testing.T) {
	doc, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(doc)
	i := strings.Index(sec, "## 4. Metric names")
	if i < 0 {
		t.Fatal("docs/contract.md has no section 4. Metric names")
	}
	sec = sec[i:]
	if j := strings.Index(sec[3:], "\n## "); j >= 0 {
		sec = sec[:j+3]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| (counter|gauge)[^|]* \\| ([^|]+) \\|$")
	type entry struct{ typ, labels string }
	want := map[string]entry{}
	for _, m := range row.FindAllStringSubmatch(sec, -1) {
		var ls []string
		for _, l := range strings.Split(m[3], ",") {
			l = strings.TrimSpace(l)
			if k := strings.IndexByte(l, ' '); k >= 0 {
				l = l[:k] // retryable (`"true"`/`"false"`)
			}
			if l != "exporter" && l != "vendor" {
				ls = append(ls, l)
			}
		}
		want[m[1]] = entry{m[2], strings.Join(ls, ",")}
	}
	if len(want) != 7 {
		t.Fatalf("found %d metric rows in docs/contract.md section 4, want 7: %v", len(want), want)
	}
	got := map[string]entry{}
	for _, d := range metrics.Defs() {
		if strings.HasPrefix(d.Name, "declaragent_audit_") {
			got[d.Name] = entry{d.Type, strings.Join(d.Labels, ",")}
		}
	}
	for n, w := range want {
		if g, ok := got[n]; !ok || g != w {
			t.Errorf("%s: table has %+v (present %v), docs/contract.md %+v", n, g, ok, w)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s is a contract name in the table but not in docs/contract.md", n)
		}
	}
}

// TestTableOwnNames: every other name is a valid auditpipe_ name, a
// counter's (and only a counter's) ends in _total, each appears once, and
// each says who sets it.
func TestTableOwnNames(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range metrics.Defs() {
		if seen[d.Name] {
			t.Errorf("%s twice", d.Name)
		}
		seen[d.Name] = true
		if !metrics.Known(d.Name) {
			t.Errorf("%s: not Known", d.Name)
		}
		if d.Owner == "" {
			t.Errorf("%s: no owner", d.Name)
		}
		if strings.HasPrefix(d.Name, "declaragent_audit_") {
			continue
		}
		if !strings.HasPrefix(d.Name, "auditpipe_") || !model.LegacyValidation.IsValidMetricName(d.Name) {
			t.Errorf("%s: not a valid auditpipe_ name", d.Name)
		}
		if (d.Type == "counter") != strings.HasSuffix(d.Name, "_total") {
			t.Errorf("%s: a %s; a counter's name, and only a counter's, ends in _total", d.Name, d.Type)
		}
		if slices.Contains(d.Labels, metrics.LabelExporter) || slices.Contains(d.Labels, metrics.LabelVendor) {
			t.Errorf("%s: exporter and vendor are constant labels", d.Name)
		}
	}
	if metrics.Known("auditpipe_no_such_total") {
		t.Error("an unknown name is Known")
	}
}
