package splunk

import (
	"strconv"
	"testing"

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
	for _, gz := range []bool{true, false} {
		src := "auditpipe-test-" + newUUID()
		s := newSink(t, Config{URL: vl.URL(), Gzip: gz, Source: src, Index: "audit"})
		sinktest.VictoriaLogsRoundTrip(t, vl, s, records(len(sinktest.Awkward)*3, 400), `source:="`+src+`"`,
			func(row map[string]string, r *sink.Record) string {
				// VictoriaLogs flattens "fields" to "fields.<name>".
				if row["fields.recordHash"] != r.Hash || row["fields.seq"] != itoa(r.Seq) || row["fields.tenantId"] != "acme" ||
					row["sourcetype"] != DefaultSourcetype || row["index"] != "audit" {
					return "fields"
				}
				return ""
			})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
