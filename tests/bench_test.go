package tests

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestBenchScript keeps scripts/bench.sh honest at a tiny N: every sink's
// pipeline row runs to the end (the script itself fails when a pipeline
// fails or its cursor does not reach the last row, so the null receiver
// must answer each intake as the sinks require), every row is followed by
// a ratio to its baseline, and the latency part prints its quantiles for
// both the ack line and the cursor. It asserts the shape of the output,
// never a timing.
func TestBenchScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary and runs the benchmark script: skipped with -short")
	}
	for _, c := range []string{"bash", "sqlite3", "gzip", "curl", "/usr/bin/time"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("scripts/bench.sh needs %s", c)
		}
	}
	cmd := exec.Command("bash", "scripts/bench.sh", "2000", "all")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(),
		"BENCH_DIR="+t.TempDir(),
		"BENCH_SINKS=splunk elastic datadog file",
		"BENCH_VLOGS=0",
		"BENCH_LATENCY=100",
		"BENCH_LATENCY_SECS=1",
		"GOFLAGS=",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/bench.sh 2000: %v\n%s", err, out)
	}
	text := string(out)
	ratio := regexp.MustCompile(`^  ratio to .*: speed ([0-9.]+|n/a )x, CPU ([0-9.]+|n/a )x$`)
	var rows []string
	var open string // the row still waiting for its ratio line
	seen := false   // a row has been printed
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.Contains(line, " rec/s ") && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "latency "):
			if open != "" {
				t.Errorf("row %q has no ratio line", open)
			}
			open, seen = line, true
			rows = append(rows, line)
		case ratio.MatchString(line):
			if !seen {
				t.Errorf("ratio line %q follows no row", line)
			}
			open = ""
		}
	}
	if open != "" {
		t.Errorf("row %q has no ratio line", open)
	}
	for _, want := range []string{"audit-read --db", "audit-verify (fast path)", "splunk: ", "elastic: ", "datadog: ", "file: "} {
		n := 0
		for _, r := range rows {
			if strings.HasPrefix(r, want) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no row %q in:\n%s", want, out)
		}
	}
	for _, want := range []string{"CPU us per record by stage:", "peak RSS by stage (MiB):", "cursor after the run: 2000 (of 2000)",
		"commit -> ack line  p50", "commit -> cursor    p50", "== host: "} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
