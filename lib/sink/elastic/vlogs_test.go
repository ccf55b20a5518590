package elastic

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestVictoriaLogsRoundTrip ships 50 chained records through the bulk
// endpoint of a real VictoriaLogs and reads them back: exactly 50 rows,
// each _msg the exact record line (so the chain re-verifies from a query),
// _time the record's ts. The VL-Msg-Field and VL-Time-Field headers the
// sink sends are what make message _msg and @timestamp _time. Skipped
// without the victoria-logs binary (see internal/vlogs) and under -short.
func TestVictoriaLogsRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	for i, gz := range []bool{true, false} {
		s := newSink(t, Config{URL: vl.URL() + "/insert/elasticsearch", Gzip: gz, Index: "audit-acme"})
		// A distinct chain per run, told apart by its first prevHash.
		genesis := fmt.Sprintf("%064x", i+1)
		recs := chainRecords(t, 50, 400, 1764244800123+int64(i)*100000, genesis)
		q := `seq:>=40 AND _time:[` + time.UnixMilli(recs[0].TS).UTC().Format(time.RFC3339Nano) + `, ` +
			time.UnixMilli(recs[len(recs)-1].TS).UTC().Format(time.RFC3339Nano) + `]`
		sinktest.VictoriaLogsRoundTrip(t, vl, s, recs, q, func(row map[string]string, r *sink.Record) string {
			if row["recordHash"] != r.Hash || row["prevHash"] != r.PrevHash || row["seq"] != strconv.FormatInt(r.Seq, 10) ||
				row["tenantId"] != "acme" || row["kind"] != "tool_call" {
				return "fields"
			}
			if _, ok := row["message"]; ok {
				return "kept message beside _msg"
			}
			return ""
		})
	}
}
