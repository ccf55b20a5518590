package elastic

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestSeqIDConflictIsNotADuplicate: with IDField seq, a 409 counts as
// delivered only if the stored document is the same record (same
// recordHash, fetched with _mget); a document of another chain (a reset
// database, a second host) is a Conflict naming seq, id and both hashes,
// and nothing of it is acked.
func TestSeqIDConflictIsNotADuplicate(t *testing.T) {
	ctx := context.Background()
	mine := records(t, 300, 300)
	other := chainRecords(t, 300, 300, 1764244900000, strings.Repeat("a", 64)) // another chain, same seqs
	for _, shape := range []string{ShapeMessage, ShapeLine} {
		t.Run(shape, func(t *testing.T) {
			t.Run("another chain's documents", func(t *testing.T) {
				f := startFake(t, esfake.Options{})
				s := newSink(t, Config{URL: f.URL, Index: "audit", IDField: IDSeq, DocShape: shape})
				if res, err := s.Send(ctx, other); err != nil || res.Status[0] != sink.Delivered {
					t.Fatalf("store the other chain: %v %v", err, res.Status[:1])
				}
				res, err := s.Send(ctx, mine)
				var se *sink.Error
				if !errors.As(err, &se) || se.Class != sink.Conflict {
					t.Fatalf("want a Conflict, got %v", err)
				}
				for i, st := range res.Status {
					if st == sink.Delivered || st == sink.Duplicate {
						t.Fatalf("record %d (seq %d) counted as %v: it was never stored", i, mine[i].Seq, st)
					}
				}
				msg := err.Error()
				t.Log(msg)
				if miss := hasAll(msg, "seq 40", `_id "40"`, mine[0].Hash, other[0].Hash, "another chain"); miss != "" {
					t.Fatalf("error lacks %q: %s", miss, msg)
				}
			})
			t.Run("a replay of the same records", func(t *testing.T) {
				f := startFake(t, esfake.Options{})
				s := newSink(t, Config{URL: f.URL, Index: "audit", IDField: IDSeq, DocShape: shape})
				if _, err := s.Send(ctx, mine[:200]); err != nil {
					t.Fatal(err)
				}
				res, err := s.Send(ctx, mine)
				if err != nil {
					t.Fatal(err)
				}
				want := append(repeat(sink.Duplicate, 200), repeat(sink.Delivered, 100)...)
				if !slices.Equal(res.Status, want) {
					t.Fatalf("statuses %v", res.Status)
				}
				if n := countPath(f, "/_mget"); n == 0 {
					t.Fatalf("the 409s were not checked with _mget")
				}
			})
			t.Run("a document gone between the 409 and the check", func(t *testing.T) {
				f := startFake(t, esfake.Options{Item: func(it *esfake.Item) esfake.ItemResult {
					return esfake.ItemResult{Status: 409, Type: "version_conflict_engine_exception", Reason: "exists"}
				}})
				s := newSink(t, Config{URL: f.URL, Index: "audit", IDField: IDSeq, DocShape: shape})
				res, err := s.Send(ctx, mine[:5])
				var se *sink.Error
				if !errors.As(err, &se) || se.Class != sink.Retryable || !slices.Equal(res.Status, repeat(sink.Pending, 5)) {
					t.Fatalf("want Retryable with nothing delivered, got %v %v", res.Status, err)
				}
			})
		})
	}
	t.Run("no read privilege", func(t *testing.T) {
		src, _ := secretFile(t, apiKey)
		f := startFake(t, esfake.Options{APIKeys: []string{apiKey}, NoRead: []string{apiKey}})
		f.Put("audit", "40", string(other[0].Line))
		s := newSink(t, Config{URL: f.URL, Index: "audit", IDField: IDSeq, DocShape: ShapeLine, Auth: Auth{Kind: AuthAPIKey, APIKey: src}})
		res, err := s.Send(ctx, mine[:3])
		var se *sink.Error
		if !errors.As(err, &se) || se.Class != sink.Config || res.Status[0] != sink.Pending {
			t.Fatalf("want Config with seq 40 pending, got %v %v", res.Status, err)
		}
		noSecret(t, err)
		if miss := hasAll(err.Error(), "read", "--id-field seq"); miss != "" {
			t.Fatalf("error lacks %q: %v", miss, err)
		}
	})
	t.Run("a target _mget cannot read (a data stream)", func(t *testing.T) {
		f := startFake(t, esfake.Options{Fault: func(r *esfake.Request) esfake.Fault {
			if strings.HasSuffix(r.Path, "/_mget") {
				return esfake.Fault{Status: 200, Body: `{"docs":[{"_index":"audit","_id":"40","error":{"type":"illegal_argument_exception","reason":"get by id is not supported on data streams"}}]}`}
			}
			return esfake.Fault{}
		}})
		f.Put("audit", "40", string(mine[0].Line))
		s := newSink(t, Config{URL: f.URL, Index: "audit", IDField: IDSeq, DocShape: ShapeLine})
		res, err := s.Send(ctx, mine[:1])
		var se *sink.Error
		if !errors.As(err, &se) || se.Class != sink.Config || res.Status[0] != sink.Pending {
			t.Fatalf("want Config with seq 40 pending, got %v %v", res.Status, err)
		}
		if miss := hasAll(err.Error(), "seq 40", "get by id is not supported on data streams", "--id-field recordHash"); miss != "" {
			t.Fatalf("error lacks %q: %v", miss, err)
		}
	})
	t.Run("recordHash ids need no check", func(t *testing.T) {
		f := startFake(t, esfake.Options{})
		s := newSink(t, Config{URL: f.URL, Index: "audit"})
		s.Send(ctx, mine)
		res, err := s.Send(ctx, mine)
		if err != nil || !slices.Equal(res.Status, repeat(sink.Duplicate, len(mine))) {
			t.Fatalf("%v %v", res.Status[:3], err)
		}
		if n := countPath(f, "/_mget"); n != 0 {
			t.Fatalf("%d _mget requests: a 409 on a recordHash _id is the same record by construction", n)
		}
	})
}

func hasAll(s string, want ...string) string {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return w
		}
	}
	return ""
}

func countPath(f *esfake.Server, suffix string) int {
	n := 0
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}
