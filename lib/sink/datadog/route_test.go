package datadog

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/lib/route"
)

// TestTagsForRoutes: each log carries its tenant's tags, once; a hostile
// tenant id cannot add a tag or a key, nor leave the ddtags string.
func TestTagsForRoutes(t *testing.T) {
	tenants := []string{"acme", "a,team:evil", `x","service":"forged`, "Acme"}
	recs := records(t, len(tenants), 300)
	for i := range recs {
		recs[i].TenantID = tenants[i]
	}
	tmpl, err := route.Parse("env:prod,tenant:${tenant:id}", route.DatadogTags)
	if err != nil {
		t.Fatal(err)
	}
	f := startFake(t, ddfake.Options{})
	s := newSink(t, Config{URL: f.URL, Tags: "ignored:yes", TagsFor: tmpl.Render})
	if _, err := s.Send(context.Background(), recs); err != nil {
		t.Fatalf("Send: %v", err)
	}
	logs := f.Logs()
	if len(logs) != len(recs) {
		t.Fatalf("%d logs, want %d", len(logs), len(recs))
	}
	for i, l := range logs {
		tags, _ := l.Attrs["ddtags"].(string)
		if want := tmpl.Render(&recs[i]); tags != want || strings.Count(tags, ",") != 1 || strings.Count(tags, ":") != 2 {
			t.Errorf("log %d: ddtags %q, want %q", i, tags, want)
		}
		if l.Attrs["service"] != DefaultService || strings.Count(l.Raw, `"ddtags"`) != 1 || l.Message != string(recs[i].Line) {
			t.Errorf("log %d: %s", i, l.Raw)
		}
	}
	if got := logs[0].Attrs["ddtags"]; got != "env:prod,tenant:acme" {
		t.Errorf("ddtags %q", got)
	}
}
