package elastic

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/ship"
)

// TestThroughShipper runs the sink under lib/ship against the fake: items
// refused for now (429, 503) are resent alone until they go in, the
// mapping failure is quarantined, every other record is stored exactly
// once, and the acks cover every batch in order.
func TestThroughShipper(t *testing.T) {
	recs := records(t, 30, 200)
	poison := recs[5].Hash
	var mu sync.Mutex
	seen := map[string]int{}
	f := startFake(t, esfake.Options{Item: func(it *esfake.Item) esfake.ItemResult {
		mu.Lock()
		seen[it.ID]++
		n := seen[it.ID]
		mu.Unlock()
		switch {
		case it.ID == poison:
			return esfake.ItemResult{Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse field [seq]"}
		case it.ID == recs[12].Hash && n == 1:
			return esfake.ItemResult{Status: 429, Type: "es_rejected_execution_exception", Reason: "queue full"}
		case it.ID == recs[21].Hash && n <= 2:
			return esfake.ItemResult{Status: 503, Type: "unavailable_shards_exception", Reason: "primary not active"}
		}
		return esfake.ItemResult{}
	}})
	s := newSink(t, Config{URL: f.URL, Gzip: true})
	qpath := filepath.Join(t.TempDir(), "quarantine.ndjson")
	q, err := ship.OpenQuarantine(qpath)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	acks := &sinktest.AckLog{}
	sh := ship.New(s, ship.Options{Exporter: "elastic:test", Inflight: 2, Quarantine: q, Acks: acks,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	in := make(chan *ship.Batch, 3)
	for b := range 3 {
		in <- &ship.Batch{ID: int64(b + 1), Records: slices.Clone(recs[10*b : 10*b+10])}
	}
	close(in)
	if err := sh.Run(context.Background(), in); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(acks.Acks) != 3 || acks.Acks[0].FirstSeq != 40 || acks.Acks[2].LastSeq != 69 ||
		!slices.Equal(acks.Acks[0].Quarantined, []int64{45}) || acks.Acks[1].Quarantined != nil || acks.Acks[2].Quarantined != nil {
		t.Fatalf("acks %+v", acks.Acks)
	}
	docs := f.Docs()
	if len(docs) != 29 {
		t.Fatalf("%d documents stored, want 29", len(docs))
	}
	for _, r := range recs {
		_, ok := f.Doc(DefaultIndex, r.Hash)
		if ok == (r.Hash == poison) {
			t.Errorf("seq %d stored = %v", r.Seq, ok)
		}
	}
	mu.Lock()
	if seen[recs[12].Hash] != 2 || seen[recs[21].Hash] != 3 || seen[recs[0].Hash] != 1 {
		t.Errorf("attempts: %d, %d, %d; want only the refused ones resent", seen[recs[12].Hash], seen[recs[21].Hash], seen[recs[0].Hash])
	}
	mu.Unlock()
	ql, err := os.ReadFile(qpath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(ql), "\n") != 1 || !strings.Contains(string(ql), `"seq":45,`) ||
		!strings.Contains(string(ql), "400 mapper_parsing_exception: failed to parse field [seq]") || !strings.Contains(string(ql), string(recs[5].Line)) {
		t.Fatalf("quarantine: %s", ql)
	}
}
