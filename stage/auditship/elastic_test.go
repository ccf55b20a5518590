package auditship

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// TestElasticMixedItemsQuarantineReship runs audit-ship --kind elastic
// against the Elasticsearch fake (internal/fake/esfake, a fake: real
// VictoriaLogs answers 201 to every item) with one bulk answer mixing 201,
// 409 (records an earlier, crashed run had stored), 429 (refused for now)
// and 400 (a mapping failure: poison). Every good record must be stored
// exactly once, the 429 one resent alone, the poison one quarantined with
// the SIEM's reason, and the acks cover seq 1..60 with the quarantined
// seq named. Then the cause is fixed and the quarantine file re-shipped
// through audit-read --quarantine | audit-verify --mode report |
// audit-ship: the poison record is stored, once, byte for byte; a second
// re-ship stores nothing more.
func TestElasticMixedItemsQuarantineReship(t *testing.T) {
	lines := makeChain(t, 60, 1764244800123, "acme", "globex")
	poison, retry := lines[29], lines[19]
	var fixed atomic.Bool
	var mu sync.Mutex
	attempts := map[string]int{}
	f := esfake.New(esfake.Options{Item: func(it *esfake.Item) esfake.ItemResult {
		mu.Lock()
		attempts[it.ID]++
		n := attempts[it.ID]
		mu.Unlock()
		switch {
		case it.ID == poison.hash && !fixed.Load():
			return esfake.ItemResult{Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse field [record.n] of type [long]"}
		case it.ID == retry.hash && n == 1:
			return esfake.ItemResult{Status: 429, Type: "es_rejected_execution_exception", Reason: "rejected execution of coordinating operation"}
		}
		return esfake.ItemResult{}
	}})
	t.Cleanup(f.Close)
	common := []string{"--kind", "elastic", "--url", f.URL, "--index", "declaragent-${tenant:id}", "--min-backoff", "1ms", "--acks", "-", "--quiet"}

	// An earlier run stored seq 11..15 and died before its ack.
	if _, stderr, err := runShip(t, ndjsonOf(lines[10:15]), common...); err != nil {
		t.Fatalf("first run: %v\n%s", err, stderr)
	}
	mu.Lock()
	clear(attempts)
	mu.Unlock()

	qpath := filepath.Join(t.TempDir(), "poison.ndjson")
	stdout, stderr, err := runShip(t, ndjsonOf(lines), append(common, "--exporter", "elastic:prod", "--batch-size", "20", "--quarantine", qpath)...)
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, stderr)
	}
	checkAcks(t, acksOf(t, stdout), lines, "elastic:prod", 30)
	if !strings.Contains(stderr, "record seq 30 rejected by the SIEM, quarantined in "+qpath) {
		t.Errorf("stderr does not report the quarantine:\n%s", stderr)
	}
	docs := f.Docs()
	if len(docs) != 59 {
		t.Fatalf("%d documents stored, want 59", len(docs))
	}
	for _, l := range lines {
		index := "declaragent-" + l.tenant
		d, ok := f.Doc(index, l.hash)
		if ok == (l.seq == 30) {
			t.Fatalf("seq %d stored in %s: %v", l.seq, index, ok)
		}
		if ok && (d.Version != 1 || docMessage(t, d.Source) != l.text) {
			t.Fatalf("seq %d: %+v", l.seq, d)
		}
		want := 1
		if l.seq == 20 {
			want = 2 // 429, then stored
		}
		mu.Lock()
		got := attempts[l.hash]
		mu.Unlock()
		if got != want {
			t.Errorf("seq %d sent %d times, want %d", l.seq, got, want)
		}
	}

	// The quarantine file names the record, the reason and its exact line.
	data, err := os.ReadFile(qpath)
	if err != nil {
		t.Fatal(err)
	}
	var entry struct {
		Exporter   string          `json:"exporter"`
		Seq        int64           `json:"seq"`
		RecordHash string          `json:"recordHash"`
		Reason     string          `json:"reason"`
		Line       json.RawMessage `json:"line"`
	}
	if bytes.Count(data, []byte("\n")) != 1 || json.Unmarshal(data, &entry) != nil {
		t.Fatalf("quarantine file:\n%s", data)
	}
	if entry.Exporter != "elastic:prod" || entry.Seq != 30 || entry.RecordHash != poison.hash ||
		entry.Reason != "400 mapper_parsing_exception: failed to parse field [record.n] of type [long]" || string(entry.Line) != poison.text {
		t.Fatalf("quarantine entry %+v", entry)
	}
	if fi, _ := os.Stat(qpath); fi.Mode().Perm() != 0o600 {
		t.Errorf("quarantine file mode %v", fi.Mode())
	}

	// Fixed: re-ship the quarantine file, twice.
	fixed.Store(true)
	for run := 1; run <= 2; run++ {
		var read, verified, errb bytes.Buffer
		if err := auditread.Run(context.Background(), []string{"--quarantine", "--quiet", qpath}, nil, &read, &errb); err != nil {
			t.Fatalf("audit-read --quarantine: %v\n%s", err, errb.String())
		}
		if read.String() != poison.text+"\n" {
			t.Fatalf("audit-read --quarantine emitted %q", read.String())
		}
		if err := auditverify.Run(context.Background(), []string{"--mode", "report", "--quiet"}, &read, &verified, &errb); err != nil {
			t.Fatalf("audit-verify: %v\n%s", err, errb.String())
		}
		stdout, stderr, err := runShip(t, verified.Bytes(), append(common, "--exporter", "elastic:reship")...)
		if err != nil {
			t.Fatalf("re-ship %d: %v\n%s", run, err, stderr)
		}
		if acks := acksOf(t, stdout); len(acks) != 1 || acks[0].FirstSeq != 30 || acks[0].LastSeq != 30 || acks[0].Quarantined != nil {
			t.Fatalf("re-ship %d acks %+v", run, acks)
		}
		if len(f.Docs()) != 60 {
			t.Fatalf("re-ship %d: %d documents, want 60", run, len(f.Docs()))
		}
		d, ok := f.Doc("declaragent-"+poison.tenant, poison.hash)
		if !ok || d.Version != 1 || docMessage(t, d.Source) != poison.text {
			t.Fatalf("re-ship %d: poison record %+v, %v", run, d, ok)
		}
	}
}

// docMessage returns the message field of a stored document.
func docMessage(t *testing.T, source string) string {
	t.Helper()
	var doc struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(source), &doc); err != nil {
		t.Fatalf("document %s: %v", source, err)
	}
	return doc.Message
}
