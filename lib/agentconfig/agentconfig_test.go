package agentconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSeedBlocks reads the seed page's blocks (testdata, verbatim but for
// indentation).
func TestSeedBlocks(t *testing.T) {
	tests := []struct {
		file string
		want Export
	}{
		{"splunk.yaml", Export{Kind: "splunk", HECURL: "https://http-inputs-acme.splunkcloud.com/services/collector/event",
			Token: "env:SPLUNK_HEC_TOKEN", Index: "declaragent_prod", Sourcetype: "declaragent:audit", BatchSize: 200, IntervalMs: 5000}},
		{"elastic.yaml", Export{Kind: "elastic", BaseURL: "https://es.acme.internal:9200", Index: "declaragent-audit",
			Auth: Auth{Kind: "apiKey", APIKey: "env:ELASTIC_API_KEY"}}},
		{"datadog.yaml", Export{Kind: "datadog", APIKey: "env:DATADOG_API_KEY", Site: "datadoghq.eu", Service: "declaragent",
			Source: "declaragent:audit", Tags: "env:prod,team:platform"}},
		{"multitenant.yaml", Export{Kind: "splunk", HECURL: "https://http-inputs-acme.splunkcloud.com/services/collector/event",
			Token: "env:SPLUNK_HEC_TOKEN", Index: "declaragent_${tenant:id}"}},
	}
	for _, tt := range tests {
		e, err := Load(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		got := *e
		got.Set, got.Lines = nil, nil
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
	e, _ := Load("testdata/splunk.yaml")
	if !e.Set["batchSize"] || e.Set["source"] || e.Where("token") != "audit.export.token (line 10)" {
		t.Errorf("Set %v, Where(token) %q", e.Set, e.Where("token"))
	}
}

func TestParseErrors(t *testing.T) {
	const head = "audit:\n  export:\n"
	tests := []struct {
		yaml string
		want string
	}{
		{"", "empty document"},
		{"id: x\n", "no audit: block"},
		{"audit:\n  other: 1\n", "no export"},
		{head + "    hecUrl: x\n", "has no kind"},
		{head + "    kind: file\n", `kind "file"`},
		{head + "    kind: splunk\n    hecURL: https://x\n", "line 4: unknown key audit.export.hecURL"},
		{head + "    kind: splunk\n    apiKey: env:X\n", "audit.export.apiKey is for kind datadog, not splunk"},
		{head + "    kind: splunk\n    token: abc123literal\n", "audit.export.token (line 4): a literal secret is refused"},
		{head + "    kind: datadog\n    apiKey: \"0123456789abcdef\"\n", "literal secret"},
		{head + "    kind: elastic\n    auth:\n      kind: basic\n      username: elastic\n      password: hunter2\n", "audit.export.auth.password (line 7): a literal"},
		{head + "    kind: elastic\n    auth:\n      kind: apikey\n", `kind "apikey"`},
		{head + "    kind: elastic\n    auth:\n      kind: apiKey\n      apikey: env:X\n", "unknown key auth.apikey"},
		{head + "    kind: splunk\n    batchSize: lots\n", "not a whole number"},
		{head + "    kind: splunk\n    intervalMs: -5\n", "must be positive"},
		{head + "    kind: splunk\n    index: a\n    index: b\n", "given twice"},
		{head + "    kind: splunk\n  token: [\n", "not valid YAML"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want %q", tt.yaml, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "abc123literal") || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "0123456789abcdef")) {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}

func TestTagsList(t *testing.T) {
	e, err := Parse([]byte("audit:\n  export:\n    kind: datadog\n    apiKey: ${secret:env:DD}\n    tags:\n      - env:prod\n      - tenant:${tenant:id}\n"))
	if err != nil || e.Tags != "env:prod,tenant:${tenant:id}" || e.APIKey != "${secret:env:DD}" {
		t.Fatalf("%+v, %v", e, err)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// FuzzParse: no input makes Parse panic, and an accepted block has a kind
// and only reference-shaped secrets.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"splunk.yaml", "elastic.yaml", "datadog.yaml", "multitenant.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("audit:\n  export:\n    kind: splunk\n    token: abc\n")
	f.Fuzz(func(t *testing.T, doc string) {
		e, err := Parse([]byte(doc))
		if err != nil {
			return
		}
		if e.Kind == "" || e.Set["token"] && !strings.Contains(e.Token, ":") {
			t.Fatalf("accepted %+v", e)
		}
	})
}
