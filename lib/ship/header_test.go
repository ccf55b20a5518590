package ship

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// TestHeaderBytesBeyondMaxLine: a batch header claiming more bytes than
// its records can hold under --max-line is malformed input (exit 4), not
// a panic or an allocation of what it claims.
func TestHeaderBytesBeyondMaxLine(t *testing.T) {
	for _, bytes := range []string{"1000000000000000", "9223372036854775807"} {
		in := `{"batch":{"id":1,"count":1,"bytes":` + bytes + `,"firstSeq":1,"lastSeq":1,"intervalMs":1}}` + "\n"
		out := make(chan *Batch, 1)
		err := ReadBatches(context.Background(), strings.NewReader(in), out, ndjson.DefaultMaxLine)
		if exitcode.Of(err) != exitcode.Input || !strings.Contains(err.Error(), "--max-line") {
			t.Fatalf("bytes %s: %v", bytes, err)
		}
	}
}
