package datadog

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestVictoriaLogsRoundTrip ships 50 chained records through the Datadog
// endpoint of a real VictoriaLogs and reads them back: exactly 50 rows,
// each _msg the exact record line (so the chain re-verifies from a query),
// _time the record's ts, attributes and tags as fields. Skipped without
// the victoria-logs binary (see internal/vlogs) and under -short.
func TestVictoriaLogsRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	for i, c := range []struct {
		gz     bool
		prefix string
	}{{true, ""}, {false, "/insert/datadog"}} {
		run := "dd-" + strconv.Itoa(i)
		s := newSink(t, Config{URL: vl.URL() + c.prefix, Gzip: c.gz, Tags: "env:test,run:" + run, Hostname: "h1"})
		recs := chainRecords(t, 50, 400, 1764244800123+int64(i)*100000, fmt.Sprintf("%064x", i+1))
		sinktest.VictoriaLogsRoundTrip(t, vl, s, recs, `run:="`+run+`"`, func(row map[string]string, r *sink.Record) string {
			if row["recordHash"] != r.Hash || row["prevHash"] != r.PrevHash || row["seq"] != strconv.FormatInt(r.Seq, 10) ||
				row["tenantId"] != "acme" || row["kind"] != "tool_call" || row["env"] != "test" ||
				row["service"] != DefaultService || row["ddsource"] != DefaultSource || row["hostname"] != "h1" {
				return "fields"
			}
			return ""
		})
	}
}
