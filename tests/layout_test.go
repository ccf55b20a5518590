package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules holds the tree to the import rules of docs/design.md's
// map ("Layout"): cmd -> stage -> lib; lib never imports stage or cmd; no
// product code imports internal/ (test support); a stage never imports
// another stage; a SIEM's sink package never imports another's. A failure
// names the package, the import and the rule.
func TestImportRules(t *testing.T) {
	const mod = "github.com/auditpipe/auditpipe/"
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", mod+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	type pkg struct {
		ImportPath                         string
		Imports, TestImports, XTestImports []string
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 30 {
		t.Fatalf("go list found %d packages: not the whole module", len(pkgs))
	}
	used := map[string]bool{}
	for _, p := range pkgs {
		from := strings.TrimPrefix(p.ImportPath, mod)
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if !strings.HasPrefix(imp, mod) {
					continue
				}
				to := strings.TrimPrefix(imp, mod)
				if from == to { // an external test package of its own package
					continue
				}
				if rule := importRule(from, to, test); rule != "" {
					if layoutExceptions[from+" -> "+to] {
						used[from+" -> "+to] = true
						continue
					}
					what := "imports"
					if test {
						what = "imports in its tests"
					}
					t.Errorf("%s %s %s: %s (docs/design.md, Layout)", from, what, to, rule)
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
	for e := range layoutExceptions {
		if !used[e] {
			t.Errorf("layoutExceptions lists %q, which the tree no longer does: remove it from the list", e)
		}
	}
}

// layoutExceptions are imports that break a rule today and are being
// removed; each entry says by what. A rule broken anywhere else fails.
var layoutExceptions = map[string]bool{}

// sinkShared are the packages under lib/sink that are not one SIEM's sink:
// what the sinks share, which any of them may import.
var sinkShared = map[string]bool{"lib/sink": true, "lib/sink/httpsink": true}

// sinkRegistry lists every sink (one line each); it imports them all, and
// nothing under lib/sink imports it.
const sinkRegistry = "lib/sink/sinks"

// importRule returns the rule that from importing to breaks, "" if none.
// test is true for an import made only by from's tests.
func importRule(from, to string, test bool) string {
	top := func(p string) string { return strings.SplitN(p, "/", 2)[0] }
	switch {
	case top(to) == "cmd":
		return "nothing imports a cmd/ package (a binary's main)"
	case top(to) == "tests":
		return "nothing imports tests/"
	case top(to) == "internal" && !test && top(from) != "internal":
		return "internal/ is test support: only tests and internal/ import it"
	case top(from) == "lib" && top(to) == "stage":
		return "lib never imports stage (cmd -> stage -> lib)"
	case top(from) == "stage" && top(to) == "stage" && !test:
		return "a stage never imports another stage; what they share is a lib package"
	case top(from) == "internal" && top(to) == "stage":
		return "internal/ supports tests of lib and stage; it does not import stages"
	case to == sinkRegistry && strings.HasPrefix(from, "lib/sink"):
		return "the registry (lib/sink/sinks) lists the sinks; nothing under lib/sink imports it"
	case isSinkKind(from) && isSinkKind(to) && !strings.HasPrefix(to, from+"/") && !strings.HasPrefix(from, to+"/"):
		return "a SIEM's sink never imports another's; what they share is lib/sink or lib/sink/httpsink"
	case sinkShared[from] && isSinkKind(to):
		return "lib/sink and lib/sink/httpsink serve every sink and import none"
	}
	return ""
}

// isSinkKind reports whether p is (in) one SIEM's sink package,
// lib/sink/<kind>.
func isSinkKind(p string) bool {
	if !strings.HasPrefix(p, "lib/sink/") {
		return false
	}
	kind := "lib/sink/" + strings.SplitN(strings.TrimPrefix(p, "lib/sink/"), "/", 2)[0]
	return !sinkShared[kind] && kind != sinkRegistry
}

// TestImportRuleCases checks importRule itself, so that a rule that stopped
// matching cannot pass silently.
func TestImportRuleCases(t *testing.T) {
	tests := []struct {
		from, to string
		test     bool
		broken   bool
	}{
		{"cmd/audit-read", "stage/auditread", false, false},
		{"lib/sink/sinks", "lib/sink/splunk", false, false},
		{"lib/sink/splunk", "lib/sink/sinks", false, true},
		{"lib/sink/httpsink", "lib/sink/sinks", false, true},
		{"stage/auditread", "lib/chain", false, false},
		{"lib/chain", "lib/canon", false, false},
		{"lib/chain", "stage/auditread", false, true},
		{"lib/chain", "stage/auditread", true, true},
		{"stage/auditship", "stage/auditbatch", false, true},
		{"stage/auditship", "stage/auditbatch", true, false}, // a test builds a pipeline
		{"stage/auditread", "cmd/audit-read", false, true},
		{"lib/ship", "internal/fake/hecfake", false, true},
		{"lib/ship", "internal/fake/hecfake", true, false},
		{"internal/sinktest", "internal/fakehttp", false, false},
		{"internal/sinktest", "stage/auditship", false, true},
		{"lib/sink/splunk", "lib/sink/httpsink", false, false},
		{"lib/sink/splunk", "lib/sink/elastic", false, true},
		{"lib/sink/splunk", "lib/sink/elastic", true, true},
		{"lib/sink/httpsink", "lib/sink/splunk", false, true},
		{"lib/sink", "lib/sink/file", false, true},
		{"stage/auditship", "lib/sink/splunk", false, false},
		{"tests", "internal/vlogs", true, false},
		{"tests/chaos", "stage/auditread", true, false},
		{"stage/auditread", "tests", true, true},
	}
	for _, tt := range tests {
		if got := importRule(tt.from, tt.to, tt.test) != ""; got != tt.broken {
			t.Errorf("importRule(%s -> %s, test %v) broken = %v, want %v", tt.from, tt.to, tt.test, got, tt.broken)
		}
	}
}
