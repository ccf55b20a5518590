package elastic

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestCheckpointDoc: a checkpoint record is a document with type
// checkpoint, its size, origin and the checkpoint line, under the _id
// checkpoint-<sha256 of the note>, whatever the shape and id field.
func TestCheckpointDoc(t *testing.T) {
	note := "example.com/log\n300\nROOT=\n\n— example.com/log SIG=\n"
	line, _ := json.Marshal(map[string]string{"checkpoint": note})
	recs := []sink.Record{{Seq: 300, Line: line, Checkpoint: []byte(note)}}
	sum := sha256.Sum256([]byte(note))
	for _, shape := range []string{ShapeMessage, ShapeLine} {
		for _, id := range []string{IDSeq, IDRecordHash} {
			b := appendBulk(nil, appendActionPrefix(nil, "audit"), nil, shape, id, recs, []int{0})
			parts := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
			if len(parts) != 2 {
				t.Fatalf("%s", b)
			}
			var act struct {
				Create struct {
					ID string `json:"_id"`
				}
			}
			var doc map[string]any
			if json.Unmarshal(parts[0], &act) != nil || json.Unmarshal(parts[1], &doc) != nil {
				t.Fatalf("%s", b)
			}
			if act.Create.ID != "checkpoint-"+hex.EncodeToString(sum[:]) {
				t.Fatalf("_id %q", act.Create.ID)
			}
			if doc["type"] != "checkpoint" || doc["checkpointSize"] != 300.0 || doc["origin"] != "example.com/log" || doc["message"] != string(line) || doc["seq"] != nil || doc["@timestamp"] == nil {
				t.Fatalf("doc %v", doc)
			}
		}
	}
}
