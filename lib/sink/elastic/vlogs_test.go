package elastic

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

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
	ctx := context.Background()
	for i, gz := range []bool{true, false} {
		s := newSink(t, Config{URL: vl.URL() + "/insert/elasticsearch", Gzip: gz, Index: "audit-acme"})
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
		// A distinct chain per run, told apart by its first prevHash.
		genesis := fmt.Sprintf("%064x", i+1)
		recs := chainRecords(t, 50, 400, 1764244800123+int64(i)*100000, genesis)
		res, err := s.Send(ctx, recs)
		if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, len(recs))) {
			t.Fatalf("Send: %v %v", res.Status, err)
		}
		q := `seq:>=40 AND _time:[` + time.UnixMilli(recs[0].TS).UTC().Format(time.RFC3339Nano) + `, ` +
			time.UnixMilli(recs[len(recs)-1].TS).UTC().Format(time.RFC3339Nano) + `]`
		if _, err := vl.WaitCount(ctx, q, len(recs), 15*time.Second); err != nil {
			t.Fatal(err)
		}
		rows, err := vl.Query(ctx, q+` | sort by (_time)`)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(recs) {
			t.Fatalf("gzip=%v: %d rows, want exactly %d", gz, len(rows), len(recs))
		}
		for j, row := range rows {
			r := recs[j]
			if row["_msg"] != string(r.Line) {
				t.Fatalf("gzip=%v: row %d _msg differs from the record line:\n got %q\nwant %q", gz, j, row["_msg"], r.Line)
			}
			if row["recordHash"] != r.Hash || row["prevHash"] != r.PrevHash || row["seq"] != strconv.FormatInt(r.Seq, 10) ||
				row["tenantId"] != "acme" || row["kind"] != "tool_call" {
				t.Fatalf("row %d fields: %v", j, row)
			}
			if _, ok := row["message"]; ok {
				t.Fatalf("row %d kept message beside _msg: %v", j, row)
			}
			if tm, err := time.Parse(time.RFC3339Nano, row["_time"]); err != nil || tm.UnixMilli() != r.TS {
				t.Fatalf("row %d _time = %s, want ts %d to the millisecond", j, row["_time"], r.TS)
			}
		}
	}
}
