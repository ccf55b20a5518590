package datadog

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/ship"
)

// TestThroughShipper runs the sink under lib/ship against the fake: the
// 400 is bisected down to the one record the intake rejects, the oversize
// record never leaves, both are quarantined, and every other record is
// stored (at least once: Datadog has no idempotency, and the fake keeps
// the logs before a bad one, as VictoriaLogs does).
func TestThroughShipper(t *testing.T) {
	recs := records(t, 20, 200)
	f := startFake(t, ddfake.Options{Poison: func(l *ddfake.Log) bool { return l.Attrs["recordHash"] == recs[13].Hash }})
	s := newSink(t, Config{URL: f.URL, Gzip: true})
	big := sized(t, s, MaxLogBytes+1, recs[5].TS)
	big.Seq = recs[5].Seq
	recs[5] = big

	qpath := filepath.Join(t.TempDir(), "quarantine.ndjson")
	q, err := ship.OpenQuarantine(qpath)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	acks := &sinktest.AckLog{}
	sh := ship.New(s, ship.Options{Exporter: "datadog:test", Quarantine: q, Acks: acks,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	in := make(chan *ship.Batch, 1)
	in <- &ship.Batch{ID: 1, Records: recs}
	close(in)
	if err := sh.Run(context.Background(), in); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(acks.Acks) != 1 || acks.Acks[0].Count != 20 || !slices.Equal(acks.Acks[0].Quarantined, []int64{45, 53}) {
		t.Fatalf("acks %+v", acks.Acks)
	}
	stored := map[string]int{}
	for _, l := range f.Logs() {
		stored[l.Message]++
		if l.Truncated {
			t.Fatalf("a truncated log was sent")
		}
	}
	for i, r := range recs {
		if n := stored[string(r.Line)]; (n == 0) != (i == 5 || i == 13) {
			t.Errorf("seq %d stored %d times", r.Seq, n)
		}
	}
	ql, err := os.ReadFile(qpath)
	if err != nil {
		t.Fatal(err)
	}
	q1, q2, _ := strings.Cut(string(ql), "\n")
	if !strings.Contains(q1, `"seq":45,`) || !strings.Contains(q1, "over Datadog's 1 MB per-log limit") ||
		!strings.Contains(q2, `"seq":53,`) || !strings.Contains(q2, "bad_request failure: HTTP 400") {
		t.Fatalf("quarantine:\n%.300s\n%.300s", q1, q2)
	}
}
