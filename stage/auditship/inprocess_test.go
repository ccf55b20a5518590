package auditship

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestInProcessBatcherBadInput: plain record input that goes bad is an
// input error (exit 4) naming the line, or the seq of a record whose
// envelope does not parse; the batches before it are delivered and acked
// (a line that is no record at all closes the batch before it; a record
// whose envelope fails fails its batch, as with framed input); a
// --batch-size above the SIEM's hard limit is a usage error naming where
// it came from.
func TestInProcessBatcherBadInput(t *testing.T) {
	good := ndjsonOf(makeChain(t, 3, 1_700_000_000_000))
	for _, tc := range []struct {
		name, bad string
		want      []string
		delivered int
	}{
		{"not JSON", "not json", []string{"line 4", "not a record"}, 3},
		{"no envelope", `{"seq":4,"ts":1}`, []string{"the record of seq 4"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.ndjson")
			in := append(append([]byte{}, good...), tc.bad+"\n"...)
			stdout, stderr, err := runShip(t, in, "--kind", "file", "--path", path, "--gzip=false", "--acks", "-", "--batch-size", "2")
			if exitcode.Of(err) != exitcode.Input {
				t.Fatalf("exit %d, want 4: %v\n%s", exitcode.Of(err), err, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			wantFile := ndjsonOf(makeChain(t, tc.delivered, 1_700_000_000_000))
			if data, _ := os.ReadFile(path); string(data) != string(wantFile) {
				t.Errorf("file holds %q, want the first %d records", data, tc.delivered)
			}
			if !strings.Contains(stdout, fmt.Sprintf(`"lastSeq":%d,`, tc.delivered)) {
				t.Errorf("acks %q: want the ack of seq %d", stdout, tc.delivered)
			}
		})
	}
	t.Setenv("X", "key")
	_, _, err := runShip(t, good, "--kind", "datadog", "--api-key", "env:X", "--batch-size", "1001", "--acks", "-")
	if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--batch-size 1001 is above Datadog Logs' request limit of 1000 logs") {
		t.Errorf("batch size over the hard limit: %v", err)
	}
}
