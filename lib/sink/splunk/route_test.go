package splunk

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestIndexForRoutes: each event carries its tenant's index; hostile
// tenant ids stay inside one JSON string and one event.
func TestIndexForRoutes(t *testing.T) {
	tenants := []string{"acme", "globex", `a","index":"main`, "x/../_bulk", "a\"}\n{\"event\":\"forged\"}"}
	recs := records(len(tenants), 300)
	for i := range recs {
		recs[i].TenantID = tenants[i]
	}
	tmpl, err := route.Parse("declaragent_${tenant:id}", route.SplunkIndex)
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(t, hecfake.Options{})
	s := newSink(t, Config{URL: f.URL, Index: "ignored", IndexFor: tmpl.Render})
	if _, err := s.Send(context.Background(), recs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ev := f.Events()
	if len(ev) != len(recs) {
		t.Fatalf("%d events, want %d", len(ev), len(recs))
	}
	for i, e := range ev {
		want := tmpl.Render(&recs[i])
		if e.Index != want || !strings.HasPrefix(want, "declaragent_") || e.Event != string(recs[i].Line) {
			t.Errorf("event %d: index %q, want %q; event %q", i, e.Index, want, e.Event)
		}
		if err := route.Check(route.SplunkIndex, e.Index); err != nil {
			t.Errorf("event %d: index %q: %v", i, e.Index, err)
		}
	}
}

// TestIndexForCode7NamesIndex: HEC code 7 names the index of the refused
// event, found by invalid-event-number.
func TestIndexForCode7NamesIndex(t *testing.T) {
	recs := records(4, 300)
	recs[2].TenantID = "globex"
	for i := range recs {
		if i != 2 {
			recs[i].TenantID = "acme"
		}
	}
	tmpl, _ := route.Parse("declaragent_${tenant:id}", route.SplunkIndex)
	f := startFake(t, hecfake.Options{AllowedIndexes: []string{"declaragent_acme"}})
	s := newSink(t, Config{URL: f.URL, IndexFor: tmpl.Render})
	_, err := s.Send(context.Background(), recs)
	var se *sink.Error
	if !errors.As(err, &se) || se.Class != sink.Config || se.Code != 7 ||
		!strings.Contains(err.Error(), `"declaragent_globex"`) || !strings.Contains(err.Error(), "globex") {
		t.Fatalf("err = %v, want a config error naming index declaragent_globex", err)
	}
}
