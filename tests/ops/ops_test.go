// Package ops tests what operators deploy beside the binaries:
// examples/prometheus (alert rules, their promtool unit tests, the scrape
// configuration) and examples/grafana (the dashboard), against promtool
// and a real Prometheus server scraping a real pipeline.
//
// promtool and prometheus come from the Debian package "prometheus"
// (.ci/run installs it). Without them these tests skip, except under
// CI=true, where a missing tool is a failure.
package ops

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// root is the repository root.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// requireTool returns the path of name on PATH; it skips the test without
// it, or fails it when CI=true.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not on PATH, and CI=true: install the Debian package prometheus (.ci/run does)", name)
	}
	t.Skipf("%s is not on PATH (apt-get install prometheus)", name)
	return ""
}

// known are the metric names the binaries expose: lib/metrics' table of
// names (and a histogram's _bucket series): a rule or a panel naming
// anything else has a typo.
var known = func() map[string]bool {
	m := map[string]bool{}
	for _, d := range metrics.Defs() {
		m[d.Name] = true
		if d.Type == "histogram" {
			m[d.Name+"_bucket"] = true
		}
	}
	return m
}()

var metricNameRE = regexp.MustCompile(`\b(?:declaragent_audit|auditpipe)_[a-z_]+\b`)

// unknownNames returns the metric-like names in text that no binary
// exposes.
func unknownNames(text string) []string {
	seen := map[string]bool{}
	for _, n := range metricNameRE.FindAllString(text, -1) {
		if !known[n] {
			seen[n] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
