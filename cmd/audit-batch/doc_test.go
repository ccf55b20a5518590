package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/sink/sinks"
)

// The preset table of doc.go derives from the sink declarations
// (lib/sink/<kind>/declare.go: Batch and Limits) through batcher.PresetFor.
// When it is out of date the test prints the table to paste.
func TestDocPresetTableMatchesDeclarations(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	const head = "\t-siem     max-count  max-bytes   hard limit\n"
	var want strings.Builder
	want.WriteString(head)
	row := func(name string, p batcher.Preset) {
		var hard []string
		if p.HardCount > 0 {
			hard = append(hard, fmt.Sprintf("count <= %d", p.HardCount))
		}
		if p.HardBytes > 0 {
			hard = append(hard, fmt.Sprintf("bytes <= %d", p.HardBytes))
		}
		h := "none"
		if len(hard) > 0 {
			h = strings.Join(hard, ", ") + " (" + p.Limit + ")"
		}
		fmt.Fprintf(&want, "\t%-9s %-10d %-11d %s\n", name, p.Count, p.Bytes, h)
	}
	row("(none)", batcher.NoSIEM)
	for _, d := range sinks.All {
		p, _ := batcher.PresetFor(d.Kind)
		row(d.Kind, p)
	}
	_, rest, ok := strings.Cut(string(doc), "\n"+head)
	if !ok {
		t.Fatalf("doc.go has no preset table; add under # SIEM presets:\n\n%s", want.String())
	}
	var got strings.Builder
	got.WriteString(head)
	for _, l := range strings.SplitAfter(rest, "\n") {
		if !strings.HasPrefix(l, "\t") {
			break
		}
		got.WriteString(l)
	}
	if got.String() != want.String() {
		t.Errorf("doc.go's preset table differs from the declarations; replace it with:\n\n%s", want.String())
	}
}
