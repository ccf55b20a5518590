package ship

import (
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestConflictStopsAtOnce: a sink.Conflict (the store holds another
// chain's record where one of these belongs) pauses the shipper on the
// first answer, without retries, and acks nothing of the batch.
func TestConflictStopsAtOnce(t *testing.T) {
	fs := &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
		if recs[0].Seq < 6 {
			return ok(recs), nil
		}
		return sink.NewResult(len(recs)), &sink.Error{Class: sink.Conflict, Code: -1, Msg: "seq 6: another chain"}
	}}
	acks, sl, err := run(t, fs, Options{Inflight: 1, PauseAfter: 5}, mkBatches(3, 5))
	if exitcode.Of(err) != exitcode.Paused || !strings.Contains(err.Error(), "seq 6: another chain") {
		t.Fatalf("err %v", err)
	}
	if len(acks.acks) != 1 || acks.acks[0].LastSeq != 5 {
		t.Fatalf("acks %+v", acks.acks)
	}
	if fs.calls != 2 || len(sl.d) != 0 {
		t.Fatalf("%d sends, %d backoffs: a conflict must stop at once", fs.calls, len(sl.d))
	}
}
