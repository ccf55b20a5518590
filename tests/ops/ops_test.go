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
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
	"github.com/auditpipe/auditpipe/stage/auditcheckpoint"
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

// known are the metric names the binaries expose, by the constants that
// define them: a rule or a panel naming anything else has a typo.
var known = map[string]bool{
	metrics.NameBackpressurePaused: true, metrics.NameExportFailures: true, metrics.NameBatchIntervalMs: true,
	metrics.NameExportLastSeq: true, metrics.NameLastSeq: true, metrics.NameExportAcked: true,
	metrics.NameExportPaused: true, metrics.NameBackpressureSeconds: true, metrics.NameExportFailuresByReason: true,
	metrics.NameRecordsIn: true, metrics.NameRecordsOut: true, metrics.NameBytesIn: true, metrics.NameBytesOut: true,
	metrics.NameBatches: true, metrics.NameRetries: true, metrics.NameQuarantined: true,
	metrics.NameInflightRequests: true, metrics.NameRequestDuration: true, metrics.NameRequestDuration + "_bucket": true,
	metrics.NameDuplicates:   true,
	metrics.NameVerifyBreaks: true, metrics.NameExportLag: true,
	stagemetrics.NameStageLastSeq: true, stagemetrics.NameBlockedSeconds: true, stagemetrics.NameRequests: true, stagemetrics.NameSplits: true,
	stagemetrics.NameBisects: true, stagemetrics.NameShipBusySeconds: true, stagemetrics.NameShipLastAckedSeq: true,
	stagemetrics.NameExportFailingSince: true, stagemetrics.NameShipAcksHeld: true, stagemetrics.NameMarksDropped: true,
	auditbatch.NameBatchMaxIntervalMs: true, auditbatch.NameBatchesClosed: true,
	auditcheckpoint.NameCheckpointsWritten: true, auditcheckpoint.NameSealedSize: true,
	auditcheckpoint.NameUnwitnessedSeconds: true, auditcheckpoint.NameWitnessedSize: true, auditcheckpoint.NameWitnessRefusals: true,
}

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
