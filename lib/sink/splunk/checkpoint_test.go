package splunk

import (
	"encoding/json"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestCheckpointEvent: a checkpoint record is an event of sourcetype
// <records' sourcetype>:checkpoint with the checkpoint line verbatim as its
// event and no fields.seq; a record beside it is unchanged.
func TestCheckpointEvent(t *testing.T) {
	note := "example.com/log\n300\nROOT=\n\n— example.com/log SIG=\n"
	line, _ := json.Marshal(map[string]string{"checkpoint": note})
	for _, tc := range []struct{ sourcetype, index, want string }{
		{DefaultSourcetype, "", DefaultSourcetype + ":checkpoint"},
		{`a"b`, "main", `a"b:checkpoint`},
	} {
		meta := appendMeta(nil, "h", "src", tc.sourcetype, tc.index)
		r := sink.Record{Seq: 300, Line: line, Checkpoint: []byte(note)}
		var ev struct {
			Host, Source, Sourcetype, Index, Event string
			Time                                   *float64
			Fields                                 map[string]string
		}
		b := appendEvent(nil, meta, &r)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if ev.Sourcetype != tc.want || ev.Host != "h" || ev.Source != "src" || ev.Index != tc.index || ev.Event != string(line) || ev.Time != nil {
			t.Fatalf("event %+v from %s", ev, b)
		}
		if ev.Fields["type"] != "checkpoint" || ev.Fields["checkpointSize"] != "300" || ev.Fields["origin"] != "example.com/log" || ev.Fields["seq"] != "" {
			t.Fatalf("fields %v", ev.Fields)
		}
	}
}
