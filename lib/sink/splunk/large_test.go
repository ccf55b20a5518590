package splunk

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// large returns three chained records: a small one, one just small
// enough for a VictoriaLogs entry, and a 5 MiB one.
func large() []sink.Record {
	a := sinktest.Records(1, 400, 1764244800123, "")
	b := sinktest.Records(1, httpsink.VictoriaLogsMaxEntry-httpsink.VictoriaLogsOverhead-4096, 1764244800124, a[0].Hash)
	c := sinktest.Records(1, 5<<20, 1764244800125, b[0].Hash)
	b[0].Seq, c[0].Seq = 41, 42 // Records numbers each call from 40
	return []sink.Record{a[0], b[0], c[0]}
}

// TestLargeRecordShipped: a record the SIEM takes is shipped whatever its
// size: 5 MiB arrive byte for byte.
func TestLargeRecordShipped(t *testing.T) {
	f := startFake(t, hecfake.Options{})
	for _, gz := range []bool{false, true} {
		f.Reset()
		s := newSink(t, Config{URL: f.URL, Gzip: gz})
		recs := large()
		res, err := s.Send(context.Background(), recs)
		if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, 3)) {
			t.Fatalf("gzip=%v: %v %v", gz, res.Status, err)
		}
		if got := f.EventStrings(); len(got) != 3 || got[2] != string(recs[2].Line) {
			t.Fatalf("gzip=%v: the 5 MiB record did not arrive byte for byte", gz)
		}
	}
}

// TestVictoriaLogsTooLargeNotSent: VictoriaLogs drops an entry over 2 MiB
// and answers success; a record too large for it is not sent but Poison
// with a "too large" reason, the rest of the request goes.
func TestVictoriaLogsTooLargeNotSent(t *testing.T) {
	var biggest int
	f := startFake(t, hecfake.Options{Fault: func(r *hecfake.Request) hecfake.Fault {
		biggest = max(biggest, len(r.Body))
		return hecfake.Fault{Status: 200, Code: 0, Text: "Success", Header: http.Header{"X-Server-Hostname": {"vm"}}}
	}})
	s := newSink(t, Config{URL: f.URL})
	recs := large()
	res, err := s.Send(context.Background(), recs)
	if err != nil || !slices.Equal(res.Status, statuses(sink.Delivered, sink.Delivered, sink.Poison)) {
		t.Fatalf("%v %v", res.Status, err)
	}
	if !sink.IsTooLarge(res.Reason[2]) || !strings.Contains(res.Reason[2], "VictoriaLogs drops a log entry over") {
		t.Fatalf("reason %q", res.Reason[2])
	}
	if biggest >= 5<<20 {
		t.Fatalf("the 5 MiB record was sent (%d bytes)", biggest)
	}
}

// TestVictoriaLogsLargeRecords: against the real VictoriaLogs, a record
// just under its entry limit arrives byte for byte, and a 5 MiB one is
// set aside as too large instead of being acked and dropped.
func TestVictoriaLogsLargeRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	ctx := context.Background()
	src := "auditpipe-large-" + newUUID()
	s := newSink(t, Config{URL: vl.URL(), Source: src})
	recs := large()
	res, err := s.Send(ctx, recs)
	if err != nil || !slices.Equal(res.Status, statuses(sink.Delivered, sink.Delivered, sink.Poison)) || !sink.IsTooLarge(res.Reason[2]) {
		t.Fatalf("Send: %v %q %v", res.Status, res.Reason, err)
	}
	q := `source:="` + src + `"`
	if _, err := vl.WaitCount(ctx, q, 2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	rows, err := vl.Query(ctx, q+` | sort by (_time)`)
	if err != nil || len(rows) != 2 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	for i, row := range rows {
		if row["_msg"] != string(recs[i].Line) {
			t.Fatalf("row %d (%d bytes) differs from the record line (%d bytes)", i, len(row["_msg"]), len(recs[i].Line))
		}
	}
}
