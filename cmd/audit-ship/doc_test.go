package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/sinks"
)

var update = flag.Bool("update", false, "rewrite doc.go's tables from the declarations")

// The tables of doc.go that derive from the sink declarations
// (lib/sink/<kind>/declare.go): each is the block of tab-indented lines
// after its heading line. When one is out of date the test prints the
// block to paste (or go test ./cmd/audit-ship -update rewrites it).
func TestDocTablesMatchDeclarations(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ heading, want string }{
		{"fails, printing the new table, when this one differs from them):", flagTable(sinks.All)},
		{"The agent.yaml keys (from lib/sink/<kind>/declare.go):", agentTable(sinks.All)},
	} {
		got, ok := block(string(doc), tc.heading)
		if !ok {
			t.Errorf("doc.go has no line %q followed by its table; add it with:\n\n%s\n%s", tc.heading, tc.heading, tc.want)
			continue
		}
		if got != tc.want && *update {
			i := strings.Index(string(doc), "\n"+tc.heading+"\n\n") + len("\n"+tc.heading+"\n\n")
			doc = []byte(string(doc[:i]) + tc.want + string(doc[i+len(got):]))
			if err := os.WriteFile("doc.go", doc, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("doc.go's table after %q differs from the declarations; replace it with:\n\n%s", tc.heading, tc.want)
		}
	}
}

// block returns the tab-indented lines after the heading line (after one
// blank line), each with its newline.
func block(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n\n")
	if !ok {
		return "", false
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(rest, "\n") {
		if !strings.HasPrefix(l, "\t") {
			break
		}
		b.WriteString(l)
	}
	return b.String(), true
}

// flagTable is one entry per sink flag: the flag, its value and default,
// then its help (joined per kind) wrapped under it.
func flagTable(decls []*sink.Decl) string {
	var b strings.Builder
	for _, f := range sink.Table(decls) {
		b.WriteString("\t--" + f.Name)
		switch f.Type {
		case sink.String:
			b.WriteString(" VALUE")
		case sink.Duration:
			b.WriteString(" D")
		case sink.Int:
			b.WriteString(" N")
		}
		if f.Default != "" && !(f.Type == sink.Bool && f.Default == "false") {
			b.WriteString(" (default " + f.Default + ")")
		}
		b.WriteString("\n")
		line := "\t    "
		for _, w := range strings.Fields(f.Help) {
			if len(line) > 5 && len(line)+1+len(w) > 76 {
				b.WriteString(line + "\n")
				line = "\t    "
			}
			if len(line) > 5 {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// agentTable is one entry per kind: its audit.export keys and the flags
// they fill.
func agentTable(decls []*sink.Decl) string {
	var b strings.Builder
	for _, d := range decls {
		if len(d.Agent) == 0 {
			continue
		}
		line := "\tkind: " + d.Kind + strings.Repeat(" ", max(1, 10-len(d.Kind)))
		for i, k := range d.Agent {
			w := k.Key + " -> --" + k.Flag
			if i < len(d.Agent)-1 {
				w += ","
			}
			if len(line)+1+len(w) > 76 {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = "\t" + strings.Repeat(" ", 16)
			} else if i > 0 {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("\tevery kind      batchSize -> --batch-size, intervalMs -> --batch-interval\n")
	return b.String()
}
