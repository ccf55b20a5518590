package elastic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// large returns three chained records (seqs 40..42): a small one, one
// just small enough for a VictoriaLogs entry, and a 5 MiB one.
func large(prev string) []sink.Record {
	a := sinktest.Records(1, 400, 1764244800123, prev)
	b := sinktest.Records(1, httpsink.VictoriaLogsMaxEntry-httpsink.VictoriaLogsOverhead-4096, 1764244800124, a[0].Hash)
	c := sinktest.Records(1, 5<<20, 1764244800125, b[0].Hash)
	b[0].Seq, c[0].Seq = 41, 42
	return []sink.Record{a[0], b[0], c[0]}
}

// TestLargeRecordShipped: a record the store takes is shipped whatever
// its size: 5 MiB arrive byte for byte.
func TestLargeRecordShipped(t *testing.T) {
	for _, shape := range []string{ShapeMessage, ShapeLine} {
		f := startFake(t, esfake.Options{})
		s := newSink(t, Config{URL: f.URL, Index: "audit", DocShape: shape, Gzip: true})
		recs := large("")
		res, err := s.Send(context.Background(), recs)
		if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, 3)) {
			t.Fatalf("%s: %v %v", shape, res.Status, err)
		}
		d, ok := f.Doc("audit", recs[2].Hash)
		got := d.Source
		if shape == ShapeMessage {
			var doc struct{ Message string }
			json.Unmarshal([]byte(d.Source), &doc)
			got = doc.Message
		}
		if !ok || got != string(recs[2].Line) {
			t.Fatalf("%s: the 5 MiB record did not arrive byte for byte", shape)
		}
	}
}

// TestVictoriaLogsTooLargeNotSent: to VictoriaLogs (told by its
// X-Server-Hostname header), a record over its 2 MiB entry limit is not
// sent but Poison, "too large"; the rest go.
func TestVictoriaLogsTooLargeNotSent(t *testing.T) {
	var biggest int
	f := startFake(t, esfake.Options{Fault: func(r *esfake.Request) esfake.Fault {
		biggest = max(biggest, len(r.Body))
		return esfake.Fault{}
	}})
	vlish := &headerProxy{h: http.Header{"X-Server-Hostname": {"vm"}}, to: f.URL}
	srv := vlish.start(t)
	s := newSink(t, Config{URL: srv, Index: "audit"})
	res, err := s.Send(context.Background(), large(""))
	if err != nil || !slices.Equal(res.Status, statuses(sink.Delivered, sink.Delivered, sink.Poison)) || !sink.IsTooLarge(res.Reason[2]) {
		t.Fatalf("%v %q %v", res.Status, res.Reason, err)
	}
	if biggest >= 5<<20 {
		t.Fatalf("the 5 MiB record was sent")
	}
}

// TestVictoriaLogsLargeRecords: against the real VictoriaLogs' bulk
// endpoint, a record just under its entry limit arrives byte for byte;
// a 5 MiB one is set aside as too large, not acked and dropped.
func TestVictoriaLogsLargeRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	vl := vlogs.Require(t)
	ctx := context.Background()
	s := newSink(t, Config{URL: vl.URL() + "/insert/elasticsearch", Index: "audit"})
	genesis := fmt.Sprintf("%064x", time.Now().UnixNano())
	recs := large(genesis)
	res, err := s.Send(ctx, recs)
	if err != nil || !slices.Equal(res.Status, statuses(sink.Delivered, sink.Delivered, sink.Poison)) || !sink.IsTooLarge(res.Reason[2]) {
		t.Fatalf("Send: %v %q %v", res.Status, res.Reason, err)
	}
	q := `recordHash:="` + recs[0].Hash + `" OR recordHash:="` + recs[1].Hash + `"`
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
