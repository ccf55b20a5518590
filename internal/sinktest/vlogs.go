package sinktest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// VictoriaLogsRoundTrip checks s, sends recs through it to the real
// VictoriaLogs vl and reads back the rows query selects, sorted by _time:
// exactly one row per record, in order, each _msg the exact record line
// (so the chain re-verifies from a query) and _time the record's ts to the
// millisecond; fields checks the rest of a row (what the sink's own
// encoding puts there), "" if it is right.
func VictoriaLogsRoundTrip(t *testing.T, vl *vlogs.Server, s sink.Sink, recs []sink.Record, query string,
	fields func(row map[string]string, r *sink.Record) string) {
	t.Helper()
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	res, err := s.Send(ctx, recs)
	if err != nil || !slices.Equal(res.Status, Repeat(sink.Delivered, len(recs))) {
		t.Fatalf("Send: %v %v", res.Status, err)
	}
	if _, err := vl.WaitCount(ctx, query, len(recs), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	rows, err := vl.Query(ctx, query+` | sort by (_time)`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(recs) {
		t.Fatalf("%s: %d rows, want exactly %d", query, len(rows), len(recs))
	}
	for i, row := range rows {
		r := &recs[i]
		if row["_msg"] != string(r.Line) {
			t.Fatalf("row %d _msg differs from the record line:\n got %q\nwant %q", i, row["_msg"], r.Line)
		}
		if why := fields(row, r); why != "" {
			t.Fatalf("row %d: %s: %v", i, why, row)
		}
		if tm, err := time.Parse(time.RFC3339Nano, row["_time"]); err != nil || tm.UnixMilli() != r.TS {
			t.Fatalf("row %d _time = %s, want ts %d to the millisecond", i, row["_time"], r.TS)
		}
	}
}
