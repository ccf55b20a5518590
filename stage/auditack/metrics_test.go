package auditack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/metricstest"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/stage/auditack"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

func newDB(t *testing.T, n int) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "audit.db")
	var events, stderr bytes.Buffer
	ctx := context.Background()
	if err := auditsample.Run(ctx, []string{"--count", fmt.Sprint(n)}, nil, &events, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	return db
}

// ack is the ack line audit-ship writes for seqs first..last of db: its
// lastHash is the record_hash at last, as audit-ack checks.
func ack(t *testing.T, db, exporter string, first, last int64) string {
	t.Helper()
	return fmt.Sprintf(`{"ack":{"exporter":%q,"firstSeq":%d,"lastSeq":%d,"lastHash":%q,"count":%d,"quarantined":[]}}`+"\n",
		exporter, first, last, auditack.HashAt(t, db, last), last-first+1)
}

// audit-ack reports the committed cursor, the head of the log and the lag
// between them.
func TestMetricsCursorHeadLag(t *testing.T) {
	db := newDB(t, 50)
	file := filepath.Join(t.TempDir(), "ack.prom")
	in := ack(t, db, "splunk:prod", 1, 10) + ack(t, db, "splunk:prod", 11, 20)
	var stderr bytes.Buffer
	err := auditack.Run(context.Background(), []string{"--db", db, "--exporter", "splunk:prod", "--metrics-file", file, "--quiet"},
		strings.NewReader(in), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	f, err := metricstest.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ls := []string{"binary=audit-ack", "exporter=splunk:prod", "vendor=splunk"}
	for name, want := range map[string]float64{
		metrics.NameExportLastSeq: 20,
		metrics.NameLastSeq:       50,
		metrics.NameExportLag:     30,
		metrics.NameRecordsIn:     20,
	} {
		if v, ok := f.Value(name, ls...); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v; series %v", name, v, ok, want, f.Labels(name))
		}
	}
}

// Without metrics flags nothing is polled and nothing is printed.
func TestNoMetricsNoNoise(t *testing.T) {
	db := newDB(t, 5)
	var stderr bytes.Buffer
	err := auditack.Run(context.Background(), []string{"--db", db, "--exporter", "file:x", "--quiet"},
		strings.NewReader(ack(t, db, "file:x", 1, 5)), io.Discard, &stderr)
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("Run = %v, stderr %q", err, stderr.String())
	}
}
