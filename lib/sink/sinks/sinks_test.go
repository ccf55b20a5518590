package sinks

import (
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// Every declaration is complete and consistent: a kind, a constructor, a
// default batch within its hard limits, agent.yaml keys that fill declared
// flags, and flags that agree across sinks (sink.Table panics otherwise).
func TestDeclarations(t *testing.T) {
	sink.Table(All)
	seen := map[string]bool{}
	for _, d := range All {
		if d.Kind == "" || seen[d.Kind] || d.New == nil {
			t.Errorf("%q: empty or repeated kind, or no New", d.Kind)
		}
		seen[d.Kind] = true
		if d.Batch.Records < 1 || d.Batch.Bytes < 1 ||
			d.Limits.Records > 0 && d.Batch.Records > d.Limits.Records || d.Limits.Bytes > 0 && d.Batch.Bytes > d.Limits.Bytes {
			t.Errorf("%s: batch %+v outside limits %+v", d.Kind, d.Batch, d.Limits)
		}
		if (d.Limits.Records > 0 || d.Limits.Bytes > 0) != (d.Limits.Why != "") {
			t.Errorf("%s: limits %+v: a hard limit needs its Why, and only then", d.Kind, d.Limits)
		}
		flags := map[string]bool{}
		for _, f := range d.Flags {
			if flags[f.Name] {
				t.Errorf("%s: --%s declared twice", d.Kind, f.Name)
			}
			flags[f.Name] = true
		}
		for _, k := range d.Agent {
			if !flags[k.Flag] {
				t.Errorf("%s: agent.yaml %s fills --%s, which %s does not declare", d.Kind, k.Key, k.Flag, d.Kind)
			}
		}
	}
}
