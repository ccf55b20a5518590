package auditbatch

import (
	"path/filepath"
	"testing"

	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/metrics"
)

// Input arriving faster than batches fill widens the interval to
// -max-interval, and the gauge says so; the flow counters add up.
func TestMetricsIntervalAndFlow(t *testing.T) {
	file := filepath.Join(t.TempDir(), "batch.prom")
	in := recs(1, 25, 200)
	_, stderr, code := runFake(t, []string{"--siem", "splunk", "--max-count", "5", "--min-interval", "50ms", "--max-interval", "400ms",
		"--metrics-file", file, "--metrics-exporter", "splunk:prod", "--quiet"}, in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := metricstest.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ls := []string{"binary=audit-batch", "exporter=splunk:prod", "vendor=splunk"}
	inBytes := float64(len(in) - 25)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		// 5 full batches: 50 -> 100 -> 200 -> 400 (capped) -> 400 -> 400.
		{metrics.NameBatchIntervalMs, nil, 400},
		{metrics.NameBatchMaxIntervalMs, nil, 400},
		{metrics.NameRecordsIn, nil, 25},
		{metrics.NameRecordsOut, nil, 25},
		{metrics.NameBytesIn, nil, inBytes},
		{metrics.NameBytesOut, nil, inBytes},
		{metrics.NameBatches, nil, 5},
		{metrics.NameBatchesClosed, []string{"reason=full"}, 5},
		{metrics.NameBatchesClosed, []string{"reason=age"}, 0},
		{metrics.NameBackpressurePaused, nil, 0},
	} {
		if v, ok := f.Value(c.name, append(ls, c.labels...)...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v; series %v", c.name, c.labels, v, ok, c.want, f.Labels(c.name))
		}
	}
}
