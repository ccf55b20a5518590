package auditack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditsample"
)

// Acks that are already waiting when a commit is due are taken first and
// committed together (group commit): a burst of 200 ack lines with
// --commit-interval 0 costs a handful of commits (fsyncs), not 200, and the
// cursor still lands on the last one.
func TestBurstOfAcksCommittedTogether(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "audit.db")
	var events bytes.Buffer
	ctx := context.Background()
	const n = 200
	if err := auditsample.Run(ctx, []string{"--count", strconv.Itoa(n)}, nil, &events, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := auditappend.Run(ctx, []string{"--db", db, "--quiet"}, &events, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for seq := int64(1); seq <= n; seq++ {
		in.WriteString(fmt.Sprintf(`{"ack":{"exporter":"x:y","firstSeq":%d,"lastSeq":%d,"lastHash":%q,"count":1,"quarantined":[]}}`+"\n",
			seq, seq, HashAt(t, db, seq)))
	}
	var stderr bytes.Buffer
	if err := Run(ctx, []string{"--db", db, "--exporter", "x:y", "--commit-interval", "0"}, strings.NewReader(in.String()), io.Discard, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`(\d+) commits?, cursor at seq (\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no summary:\n%s", stderr.String())
	}
	commits, _ := strconv.Atoi(m[1])
	if m[2] != strconv.Itoa(n) {
		t.Errorf("cursor at seq %s, want %d", m[2], n)
	}
	if commits > n/4 {
		t.Errorf("%d commits for a burst of %d acks: acks already waiting were not committed together", commits, n)
	}
}
