package ship

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestTooLargeIsNamedSo: a record the SIEM will not take for its size (a
// 413 for it alone, or a sink's own per-record limit) is quarantined with
// the reason "too large", in the entry and the log, never as "rejected by
// the SIEM"; without --quarantine the shipper pauses, saying so.
func TestTooLargeIsNamedSo(t *testing.T) {
	bigSink := func() *fakeSink {
		return &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
			for _, r := range recs {
				if r.Seq == 7 {
					return sink.NewResult(len(recs)), &sink.Error{Class: sink.TooLarge, HTTPStatus: 413, Code: -1, Msg: "request of 6000000 bytes too large"}
				}
			}
			return ok(recs), nil
		}}
	}
	ownLimit := func() *fakeSink {
		return &fakeSink{send: func(call int, recs []sink.Record) (sink.Result, error) {
			res := ok(recs)
			for i, r := range recs {
				if r.Seq == 7 {
					res.Status[i], res.Reason[i] = sink.Poison, sink.NotSentReason("record is 1200000 bytes, over Datadog's 1 MB per-log limit")
				}
			}
			return res, nil
		}}
	}
	for name, mk := range map[string]func() *fakeSink{"413 alone": bigSink, "sink's own limit": ownLimit} {
		t.Run(name, func(t *testing.T) {
			q, err := OpenQuarantine(filepath.Join(t.TempDir(), "q.ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			acks, _, err := run(t, mk(), Options{Inflight: 1, Quarantine: q, Log: &log}, mkBatches(2, 5))
			if err != nil {
				t.Fatal(err)
			}
			if len(acks.acks) != 2 || len(acks.acks[1].Quarantined) != 1 || acks.acks[1].Quarantined[0] != 7 {
				t.Fatalf("acks %+v", acks.acks)
			}
			entry, _ := os.ReadFile(q.Path())
			if !strings.Contains(string(entry), `"seq":7,`) || !strings.Contains(string(entry), `"reason":"too large: `) {
				t.Fatalf("quarantine entry: %s", entry)
			}
			// A record the sink refused itself was never sent: the
			// message says so, not that the SIEM had it.
			what := "is too large for the SIEM"
			if name == "sink's own limit" {
				what = "was not sent, refused here for its size"
			}
			if l := log.String(); !strings.Contains(l, "record seq 7 "+what) || !strings.Contains(l, "quarantined in") || strings.Contains(l, "rejected by the SIEM") {
				t.Fatalf("log: %s", l)
			}

			var log2 bytes.Buffer
			_, _, err = run(t, mk(), Options{Inflight: 1, Log: &log2}, mkBatches(2, 5))
			if exitcode.Of(err) != exitcode.Paused || !strings.Contains(err.Error(), "record seq 7") || !strings.Contains(err.Error(), strings.TrimPrefix(what, "is ")) {
				t.Fatalf("without --quarantine: %v", err)
			}
		})
	}
}
