package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestIndexForRoutes: with IndexFor every record goes to its tenant's
// index; hostile tenant ids neither change the URL nor add bulk actions
// or fields, and each lands in an index of its own.
func TestIndexForRoutes(t *testing.T) {
	tenants := []string{"acme", "globex", "x/../_bulk", `a","_id":"b`, "a\"}}\n{\"delete\":{\"_index\":\"acme\",\"_id\":\"1\"}}", "ACME"}
	recs := records(t, len(tenants), 300)
	for i := range recs {
		recs[i].TenantID = tenants[i]
	}
	tmpl, err := route.Parse("declaragent-${tenant:id}", route.ElasticIndex)
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(t, esfake.Options{})
	s := newSink(t, Config{URL: f.URL, IndexFor: tmpl.Render})
	res, err := s.Send(context.Background(), recs)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	seen := map[string]bool{}
	for i, r := range recs {
		if res.Status[i] != sink.Delivered {
			t.Fatalf("record %d: %v %s", i, res.Status[i], res.Reason[i])
		}
		index := tmpl.Render(&r)
		if err := ValidIndex(index); err != nil || !strings.HasPrefix(index, "declaragent-") || seen[index] {
			t.Fatalf("tenant %q: index %q (%v)", r.TenantID, index, err)
		}
		seen[index] = true
		if _, ok := f.Doc(index, r.Hash); !ok {
			t.Errorf("tenant %q: no document in %q", r.TenantID, index)
		}
	}
	if n := len(f.Docs()); n != len(recs) {
		t.Fatalf("%d documents, want %d", n, len(recs))
	}
	reqs := f.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/_bulk" {
		t.Fatalf("requests: %+v", reqs)
	}
	lines := bytes.Split(bytes.TrimSuffix(reqs[0].Body, []byte("\n")), []byte("\n"))
	if len(lines) != 2*len(recs) {
		t.Fatalf("%d body lines for %d records", len(lines), len(recs))
	}
	for k := 0; k < len(lines); k += 2 {
		var action map[string]map[string]string
		if err := json.Unmarshal(lines[k], &action); err != nil || len(action) != 1 || len(action["create"]) != 2 {
			t.Fatalf("action line %q: %v", lines[k], err)
		}
		if got, want := action["create"]["_index"], tmpl.Render(&recs[k/2]); got != want {
			t.Fatalf("action %d _index %q, want %q", k/2, got, want)
		}
	}
}

// TestIndexForInvalid: a router that returns an invalid name (no lib/route
// in between) makes that record poison without sending it; the others go.
func TestIndexForInvalid(t *testing.T) {
	recs := records(t, 3, 300)
	f := startFake(t, esfake.Options{})
	bad := map[string]string{recs[0].Hash: `x","_id":"evil`, recs[2].Hash: "Upper"}
	s := newSink(t, Config{URL: f.URL, IndexFor: func(r *sink.Record) string {
		if b, ok := bad[r.Hash]; ok {
			return b
		}
		return "good"
	}})
	res, err := s.Send(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status[0] != sink.Poison || res.Status[1] != sink.Delivered || res.Status[2] != sink.Poison ||
		!strings.Contains(res.Reason[0], "invalid index") || !strings.Contains(res.Reason[2], "lowercase") {
		t.Fatalf("result %v %q", res.Status, res.Reason)
	}
	if docs := f.Docs(); len(docs) != 1 || docs[0].Index != "good" {
		t.Fatalf("docs %+v", docs)
	}
}

// TestIndexForForbiddenNamesIndex: a 403 on one routed index names it.
func TestIndexForForbiddenNamesIndex(t *testing.T) {
	recs := records(t, 4, 300)
	recs[2].TenantID = "globex"
	tmpl, _ := route.Parse("declaragent-${tenant:id}", route.ElasticIndex)
	f := startFake(t, esfake.Options{Item: func(it *esfake.Item) esfake.ItemResult {
		if it.Index == "declaragent-globex" {
			return esfake.ItemResult{Status: 403, Type: "security_exception", Reason: "action [indices:data/write/bulk[s]] is unauthorized"}
		}
		return esfake.ItemResult{}
	}})
	s := newSink(t, Config{URL: f.URL, IndexFor: tmpl.Render})
	_, err := s.Send(context.Background(), recs)
	if err == nil || !strings.Contains(err.Error(), `"declaragent-globex"`) {
		t.Fatalf("err = %v, want it to name the refused index", err)
	}
}
