package ops

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The rules load, their unit tests pass, and the scrape configuration is
// valid (promtool check config also loads the rule files it names).
func TestPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool")
	dir := filepath.Join(root(t), "examples", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s: %s", strings.Join(args, " "), strings.Join(strings.Fields(string(out)), " "))
	}
}

// Every metric name the rules and their tests use is one the binaries
// expose (promtool cannot know that: a typo is just a series that never
// exists, and an alert that never fires).
func TestRuleMetricNames(t *testing.T) {
	for _, name := range []string{"alerts.yml", "alerts_test.yml", "prometheus.yml"} {
		b, err := os.ReadFile(filepath.Join(root(t), "examples", "prometheus", name))
		if err != nil {
			t.Fatal(err)
		}
		if bad := unknownNames(string(b)); len(bad) > 0 {
			t.Errorf("%s names metrics no binary exposes: %v", name, bad)
		}
	}
}
