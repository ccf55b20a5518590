package datadog

import (
	"encoding/json"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestCheckpointLog: a checkpoint record is a log with the shipment's
// ddsource/hostname/service, type checkpoint, and no seq.
func TestCheckpointLog(t *testing.T) {
	note := "example.com/log\n300\nROOT=\n\n— example.com/log SIG=\n"
	line, _ := json.Marshal(map[string]string{"checkpoint": note})
	r := sink.Record{Seq: 300, Line: line, Checkpoint: []byte(note)}
	b := appendLog(nil, appendMeta(nil, "declaragent", "", "web1", "svc"), &r)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if doc["ddsource"] != "declaragent" || doc["hostname"] != "web1" || doc["type"] != "checkpoint" || doc["checkpointSize"] != "300" ||
		doc["message"] != string(line) || doc["seq"] != nil || doc["timestamp"] != nil {
		t.Fatalf("log %v", doc)
	}
}
