package file

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestCheckpointRefused: a checkpoint line (seal --emit-checkpoints) is
// Poison with a reason that says what to do; the records beside it are
// archived byte for byte, and the archive holds no checkpoint line.
func TestCheckpointRefused(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name})
	rs := recs(day1, lines[0], lines[1])
	cp := sink.Record{Seq: 1, Line: []byte(`{"checkpoint":"o\n1\nR=\n\n— o S=\n"}`), Checkpoint: []byte("o\n1\nR=\n\n— o S=\n")}
	rs = []sink.Record{rs[0], cp, rs[1]}
	res, err := s.Send(t.Context(), rs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []sink.Status{sink.Delivered, sink.Poison, sink.Delivered}; !slices.Equal(res.Status, want) {
		t.Fatalf("status %v, want %v", res.Status, want)
	}
	if !strings.Contains(res.Reason[1], "run audit-checkpoint seal without --emit-checkpoints before a file audit-ship") {
		t.Fatalf("reason %q", res.Reason[1])
	}
	if got := readFile(t, name); got != joined(lines[0], lines[1]) {
		t.Fatalf("file %q", got)
	}
}
