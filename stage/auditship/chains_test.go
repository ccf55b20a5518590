package auditship

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/lib/chain"
)

// TestManyChains: record lines of two chains interleaved in runs, each run
// after a chain mark (what audit-verify writes on the central side of a
// Kafka fleet), shipped to Elasticsearch both as audit-ship batches them
// itself and through audit-batch: every document carries "chain" with the
// chain it belongs to, the acks name their chain and cover each chain's
// seqs 1..n in order, and no batch mixes chains. The same records without
// chain marks give documents and acks without "chain" (unchanged).
func TestManyChains(t *testing.T) {
	a := makeChain(t, 7, 1_764_244_800_000)
	b := makeChain(t, 5, 1_764_244_900_000)
	ids := map[string][]line{a[0].hash: a, b[0].hash: b}
	var in bytes.Buffer
	mark := func(id string) { in.Write(chain.AppendChainMark(nil, id, nil)); in.WriteByte('\n') }
	runs := []struct {
		c        []line
		from, to int
	}{{a, 0, 3}, {b, 0, 2}, {a, 3, 4}, {b, 2, 5}, {a, 4, 7}}
	for _, r := range runs {
		mark(r.c[0].hash)
		in.Write(ndjsonOf(r.c[r.from:r.to]))
	}
	for _, mode := range []string{"in-process", "audit-batch"} {
		t.Run(mode, func(t *testing.T) {
			f := esfake.New(esfake.Options{})
			t.Cleanup(f.Close)
			stdin := in.Bytes()
			if mode == "audit-batch" {
				stdin = framed(t, stdin, "--siem", "elastic")
				if !bytes.Contains(stdin, []byte(`,"chain":"`+a[0].hash+`"}}`)) {
					t.Fatalf("audit-batch headers do not name the chain:\n%s", stdin)
				}
			}
			stdout, stderr, err := runShip(t, stdin, "--kind", "elastic", "--url", f.URL, "--index", "audit", "--exporter", "elastic:fleet", "--acks", "-", "--quiet")
			if err != nil {
				t.Fatalf("audit-ship: %v\n%s", err, stderr)
			}
			next := map[string]int64{}
			for _, k := range acksOf(t, stdout) {
				c, ok := ids[k.Chain]
				if !ok {
					t.Fatalf("ack %+v names no chain of the input", k)
				}
				if k.FirstSeq != next[k.Chain]+1 || k.LastHash != c[k.LastSeq-1].hash || k.Count != int(k.LastSeq-k.FirstSeq+1) {
					t.Fatalf("ack %+v: want chain %s from seq %d", k, k.Chain[:8], next[k.Chain]+1)
				}
				next[k.Chain] = k.LastSeq
			}
			if next[a[0].hash] != 7 || next[b[0].hash] != 5 {
				t.Fatalf("acks end at %v, want 7 and 5", next)
			}
			if docs := f.Docs(); len(docs) != 12 {
				t.Fatalf("%d documents, want 12", len(docs))
			}
			for id, c := range ids {
				for _, l := range c {
					d, ok := f.Doc("audit", l.hash)
					if !ok {
						t.Fatalf("chain %s seq %d not stored", id[:8], l.seq)
					}
					var doc struct{ Chain, Message string }
					if err := json.Unmarshal([]byte(d.Source), &doc); err != nil {
						t.Fatal(err)
					}
					if doc.Chain != id || doc.Message != l.text {
						t.Fatalf("chain %s seq %d stored as chain %q message %q", id[:8], l.seq, doc.Chain, doc.Message)
					}
				}
			}
		})
	}
	t.Run("no chain marks", func(t *testing.T) {
		f := esfake.New(esfake.Options{})
		t.Cleanup(f.Close)
		stdout, stderr, err := runShip(t, ndjsonOf(a), "--kind", "elastic", "--url", f.URL, "--index", "audit", "--exporter", "elastic:one", "--acks", "-", "--quiet")
		if err != nil {
			t.Fatalf("audit-ship: %v\n%s", err, stderr)
		}
		if strings.Contains(stdout, `"chain"`) {
			t.Fatalf("acks name a chain: %s", stdout)
		}
		for _, d := range f.Docs() {
			if strings.Contains(d.Source, `"chain"`) {
				t.Fatalf("document names a chain: %s", d.Source)
			}
		}
		checkAcks(t, acksOf(t, stdout), a, "elastic:one")
	})
}
