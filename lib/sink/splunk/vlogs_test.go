package splunk

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestVictoriaLogsRoundTrip sends records through the HEC endpoint of a
// real VictoriaLogs and reads them back: every _msg must be the exact
// record line, so the chain re-verifies from a query. Skipped without the
// victoria-logs binary (see internal/vlogs).
func TestVictoriaLogsRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	ctx := context.Background()
	for _, gz := range []bool{true, false} {
		src := "auditpipe-test-" + newUUID()
		s := newSink(t, Config{URL: vl.URL(), Gzip: gz, Source: src, Index: "audit"})
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		recs := records(len(sinktest.Awkward)*3, 400)
		res, err := s.Send(ctx, recs)
		if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, len(recs))) {
			t.Fatalf("Send: %v %v", res.Status, err)
		}
		q := `source:="` + src + `"`
		if _, err := vl.WaitCount(ctx, q, len(recs), 15*time.Second); err != nil {
			t.Fatal(err)
		}
		rows, err := vl.Query(ctx, q+` | sort by (_time)`)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(recs) {
			t.Fatalf("gzip=%v: %d rows, want %d", gz, len(rows), len(recs))
		}
		for i, row := range rows {
			r := recs[i]
			if row["_msg"] != string(r.Line) {
				t.Fatalf("gzip=%v: row %d _msg differs from the record line:\n got %q\nwant %q", gz, i, row["_msg"], r.Line)
			}
			// VictoriaLogs flattens "fields" to "fields.<name>".
			if row["fields.recordHash"] != r.Hash || row["fields.seq"] != itoa(r.Seq) || row["fields.tenantId"] != "acme" ||
				row["sourcetype"] != DefaultSourcetype || row["index"] != "audit" {
				t.Fatalf("row %d fields: %v", i, row)
			}
			if tm, err := time.Parse(time.RFC3339Nano, row["_time"]); err != nil || tm.UnixMilli() != r.TS {
				t.Fatalf("row %d _time = %s, want ts %d to the millisecond", i, row["_time"], r.TS)
			}
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
