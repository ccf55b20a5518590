package auditship

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

const literalToken = "8f1c7c3e-literal-hec-token"

// agentYAML is where lib/agentconfig keeps the seed page's blocks.
func agentYAML(name string) string {
	return filepath.Join("..", "..", "lib", "agentconfig", "testdata", name)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUsage: every configuration mistake is exit 2 with a message that
// names it, and never echoes a literal secret.
func TestUsage(t *testing.T) {
	t.Setenv("AP_TEST_KEY", "k")
	literalYAML := writeFile(t, "agent.yaml", "audit:\n  export:\n    kind: splunk\n    hecUrl: https://h\n    token: "+literalToken+"\n")
	es := []string{"--kind", "elastic", "--url", "https://es.example:9200"}
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--kind is required"},
		{[]string{"--kind", "syslog"}, `unknown --kind "syslog"`},
		{append(es, "--sourcetype", "x"), "--sourcetype applies to --kind splunk, not elastic"},
		{[]string{"--kind", "datadog", "--index", "x"}, "--index applies to --kind splunk, elastic, not datadog"},
		{[]string{"--kind", "splunk", "--tags", "a:b"}, "--tags applies to --kind datadog"},
		{[]string{"--kind", "file", "--url", "https://x"}, "--url applies"},
		{[]string{"--kind", "file", "--path", "p", "--timeout", "5s"}, "--timeout applies to --kind splunk, elastic, datadog, kafka, not file"},
		{[]string{"--kind", "file", "--path", "p", "--secret-timeout", "5s"}, "--secret-timeout applies to --kind splunk, elastic, datadog, kafka, not file"},
		{[]string{"--kind", "splunk", "--path", "p"}, "--path applies to --kind file, not splunk"},
		{[]string{"--kind", "datadog", "--api-key", "env:AP_TEST_KEY", "--secret-timeout", "0s"}, "--secret-timeout must be positive"},
		{append(es, "--api-key", "env:AP_TEST_KEY", "--bearer", "env:AP_TEST_KEY"), "apiKey and bearer auth given at once"},
		{append(es, "--auth", "basic", "--username", "u"), "basic needs --username and --password"},
		{append(es, "--auth", "bearer", "--bearer", "env:AP_TEST_KEY", "--api-key", "env:AP_TEST_KEY"), "--api-key is for apiKey auth, but the auth kind is bearer"},
		{append(es, "--auth", "kerberos"), `"kerberos": apiKey, basic, bearer or none`},
		{append(es, "--api-key", literalToken), "--api-key: resolve secret: not an env:NAME"},
		{append(es, "--index", "Audit-${tenant:id}"), "--index: Elasticsearch index name template"},
		{append(es, "--index", "${tenant:id}"), "must begin with literal text"},
		{append(es, "--index", "audit-${tenant}"), "unknown placeholder ${tenant}"},
		{[]string{"--kind", "splunk", "--url", "https://h", "--token", "env:AP_TEST_KEY", "--index", "audit.${date:YYYY.MM.DD}"}, "holds only lowercase letters"},
		{[]string{"--kind", "splunk", "--url", "https://h", "--token", literalToken}, "literal secret is refused"},
		{[]string{"--kind", "splunk", "--url", "https://h", "--token", "${secret:vault:secret/hec}"}, "exec:vault kv get -field=token secret/hec"},
		{[]string{"--kind", "splunk", "--url", "https://h", "--token", "${secret:HEC}"}, "only Declaragent's own resolver"},
		{[]string{"--kind", "splunk", "--url", "https://h"}, "needs --token"},
		{[]string{"--kind", "datadog"}, "needs --api-key"},
		{[]string{"--kind", "datadog", "--api-key", "env:AP_TEST_KEY", "--tags", "env:prod,${kind}"}, "each tag must begin with literal text"},
		{[]string{"--kind", "datadog", "--api-key", "env:AP_TEST_KEY", "--site", "datadoghq.mars"}, "unknown site"},
		{[]string{"--kind", "file", "--path", "x", "--on-poison", "quarantine"}, "--on-poison quarantine needs --quarantine"},
		{[]string{"--kind", "file", "--path", "x", "--on-poison", "drop"}, `--on-poison "drop"`},
		{[]string{"--agent-config", agentYAML("splunk.yaml"), "--kind", "elastic"}, "audit.export.kind is splunk"},
		{[]string{"--agent-config", literalYAML}, "audit.export.token (line 5): a literal secret is refused"},
		{[]string{"--agent-config", filepath.Join(t.TempDir(), "none.yaml")}, "--agent-config: read agent config"},
		{[]string{"--agent-config", agentYAML("splunk.yaml")}, "--agent-config " + agentYAML("splunk.yaml") + ": audit.export.token (line 10): resolve secret env:SPLUNK_HEC_TOKEN"},
	}
	os.Unsetenv("SPLUNK_HEC_TOKEN")
	for _, tt := range tests {
		_, stderr, err := runShip(t, nil, tt.args...)
		if exitcode.Of(err) != exitcode.Usage || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v (exit %d), want usage error with %q\n%s", tt.args, err, exitcode.Of(err), tt.want, stderr)
		}
		if err != nil && strings.Contains(err.Error()+stderr, literalToken) {
			t.Errorf("%q: the literal secret is echoed: %v", tt.args, err)
		}
	}
}

// TestAgentConfigDefaults: agent.yaml values fill the flags not given;
// flags and environment variables win.
func TestAgentConfigDefaults(t *testing.T) {
	c, err := parse([]string{"--agent-config", agentYAML("splunk.yaml")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.kind != "splunk" || c.sink.String("url") != "https://http-inputs-acme.splunkcloud.com/services/collector/event" || c.sink.String("token") != "env:SPLUNK_HEC_TOKEN" ||
		c.sink.String("index") != "declaragent_prod" || c.sink.String("sourcetype") != "declaragent:audit" || c.batchSize != 200 || c.batchInterval != 5*time.Second ||
		c.exporter != "splunk:default" || c.onPoison != "pause" {
		t.Fatalf("config %+v", c)
	}
	if lim, err := c.batchLimits(); err != nil || lim.MaxCount != 200 || lim.MaxInterval != 5*time.Second {
		t.Fatalf("batch limits %+v, %v", lim, err)
	}
	c, err = parse([]string{"--agent-config", agentYAML("elastic.yaml")}, io.Discard)
	if err != nil || c.kind != "elastic" || c.sink.String("url") != "https://es.acme.internal:9200" || c.sink.String("index") != "declaragent-audit" ||
		c.sink.String("auth") != "apiKey" || c.sink.String("api-key") != "env:ELASTIC_API_KEY" {
		t.Fatalf("elastic: %+v, %v", c, err)
	}
	if c.label("api-key") != "--agent-config "+agentYAML("elastic.yaml")+": audit.export.auth.apiKey (line 9)" {
		t.Fatalf("label %q", c.label("api-key"))
	}
	// A credential flag replaces the whole auth block.
	c, err = parse([]string{"--agent-config", agentYAML("elastic.yaml"), "--bearer", "env:ES_TOKEN"}, io.Discard)
	if err != nil || c.sink.String("auth") != "" || c.sink.String("api-key") != "" || c.sink.String("bearer") != "env:ES_TOKEN" {
		t.Fatalf("elastic with --bearer: %+v, %v", c, err)
	}

	c, err = parse([]string{"--agent-config", agentYAML("datadog.yaml")}, io.Discard)
	if err != nil || c.kind != "datadog" || c.sink.String("api-key") != "env:DATADOG_API_KEY" || c.sink.String("site") != "datadoghq.eu" || c.sink.String("service") != "declaragent" ||
		c.sink.String("source") != "declaragent:audit" || c.sink.String("tags") != "env:prod,team:platform" {
		t.Fatalf("datadog: %+v, %v", c, err)
	}

	t.Setenv("AUDIT_SHIP_SOURCETYPE", "from-env")
	c, err = parse([]string{"--agent-config", agentYAML("splunk.yaml"), "--index", "other", "--batch-size", "50", "--quarantine", "q"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.sink.String("index") != "other" || c.sink.String("sourcetype") != "from-env" || c.batchSize != 50 || c.sink.String("url") == "" || c.onPoison != "quarantine" {
		t.Fatalf("overrides: %+v", c)
	}
}

// TestAgentConfigSplunk ships with the seed page's Splunk block against
// the HEC fake (internal/fake/hecfake, a fake for what VictoriaLogs does
// not check): only --url points elsewhere; index, sourcetype, the token
// reference and batchSize come from agent.yaml.
func TestAgentConfigSplunk(t *testing.T) {
	const tok = "11111111-2222-3333-4444-555555555555"
	f := hecfake.New(hecfake.Options{Tokens: []string{tok}})
	t.Cleanup(f.Close)
	t.Setenv("SPLUNK_HEC_TOKEN", tok)
	lines := makeChain(t, 450, 1764244800123)
	stdout, stderr, err := runShip(t, ndjsonOf(lines), "--agent-config", agentYAML("splunk.yaml"), "--url", f.URL, "--acks", "-")
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, stderr)
	}
	checkAcks(t, acksOf(t, stdout), lines, "splunk:default")
	ev := f.Events()
	if len(ev) != len(lines) {
		t.Fatalf("%d events, want %d", len(ev), len(lines))
	}
	want := map[string]bool{}
	for _, l := range lines {
		want[l.text] = true
	}
	for _, e := range ev {
		if e.Index != "declaragent_prod" || e.Sourcetype != "declaragent:audit" || !want[e.Event] {
			t.Fatalf("event %+v", e)
		}
		delete(want, e.Event)
	}
	if n := f.Counts().Event; n < 3 {
		t.Fatalf("%d requests for 450 records with batchSize 200", n)
	}
}

// TestSplunkRoutingCode7: per-tenant indices through the stage; an index
// the token may not write (HEC code 7, from the HEC fake) pauses the
// shipper with the index named, and nothing past the failed batch is
// acked.
func TestSplunkRoutingCode7(t *testing.T) {
	const tok = "11111111-2222-3333-4444-555555555555"
	t.Setenv("AP_TEST_HEC", tok)
	f := hecfake.New(hecfake.Options{Tokens: []string{tok}, AllowedIndexes: []string{"declaragent_acme", "declaragent_globex"}})
	t.Cleanup(f.Close)
	args := []string{"--kind", "splunk", "--url", f.URL, "--token", "env:AP_TEST_HEC", "--index", "declaragent_${tenant:id}",
		"--acks", "-", "--min-backoff", "1ms", "--refused-backoff", "1ms", "--pause-after", "2", "--inflight", "1"}
	lines := makeChain(t, 40, 1764244800123, "acme", "globex")
	stdout, stderr, err := runShip(t, ndjsonOf(lines), args...)
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, stderr)
	}
	checkAcks(t, acksOf(t, stdout), lines, "splunk:default")
	for i, e := range f.Events() {
		if want := "declaragent_" + lines[i].tenant; e.Index != want {
			t.Fatalf("event %d index %q, want %q", i, e.Index, want)
		}
	}

	lines = makeChain(t, 40, 1764244800123, "acme", "initech")
	stdout, stderr, err = runShip(t, framed(t, ndjsonOf(lines), "--max-count", "10"), args...)
	if exitcode.Of(err) != exitcode.Config || !strings.Contains(stderr, `index "declaragent_initech" (of event 1, seq 2, tenant "initech") is not allowed`) {
		t.Fatalf("err %v (exit %d)\n%s", err, exitcode.Of(err), stderr)
	}
	if acks := acksOf(t, stdout); len(acks) != 0 {
		t.Fatalf("acks after a refused first batch: %+v", acks)
	}
}

// TestDatadogTagsRouting: per-tenant tags through the stage against the
// Datadog fake (internal/fake/ddfake); the site's host is replaced by
// --url.
func TestDatadogTagsRouting(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	t.Setenv("AP_TEST_DD", key)
	f := ddfake.New(ddfake.Options{APIKeys: []string{key}})
	t.Cleanup(f.Close)
	lines := makeChain(t, 30, 1764244800123, "acme", "a,team:evil")
	stdout, stderr, err := runShip(t, ndjsonOf(lines), "--kind", "datadog", "--url", f.URL, "--api-key", "env:AP_TEST_DD",
		"--tags", "env:prod, tenant:${tenant:id}", "--service", "svc", "--hostname", "h1", "--acks", "-")
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, stderr)
	}
	checkAcks(t, acksOf(t, stdout), lines, "datadog:default")
	logs := f.Logs()
	if len(logs) != len(lines) {
		t.Fatalf("%d logs", len(logs))
	}
	for i, l := range logs {
		want := "env:prod,tenant:acme"
		if lines[i].tenant != "acme" {
			want = "env:prod,tenant:a_team_evil-" + h8("a,team:evil")
		}
		if l.Attrs["ddtags"] != want || l.Attrs["service"] != "svc" || l.Attrs["hostname"] != "h1" || l.Message != lines[i].text {
			t.Fatalf("log %d: %s", i, l.Raw)
		}
	}
}

// TestOnPoisonPause: without a quarantine file, a poison record pauses the
// shipper (exit 6) and its batch is not acked.
func TestOnPoisonPause(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	t.Setenv("AP_TEST_DD", key)
	lines := makeChain(t, 10, 1764244800123)
	f := ddfake.New(ddfake.Options{Poison: func(l *ddfake.Log) bool { return l.Message == lines[6].text }})
	t.Cleanup(f.Close)
	q := filepath.Join(t.TempDir(), "q.ndjson")
	stdout, stderr, err := runShip(t, ndjsonOf(lines), "--kind", "datadog", "--url", f.URL, "--api-key", "env:AP_TEST_DD",
		"--acks", "-", "--quarantine", q, "--on-poison", "pause")
	if exitcode.Of(err) != exitcode.Paused || !strings.Contains(err.Error(), "rejected record seq 7") || stdout != "" {
		t.Fatalf("err %v, stdout %q\n%s", err, stdout, stderr)
	}
	if _, err := os.Stat(q); !os.IsNotExist(err) {
		t.Fatalf("--on-poison pause opened the quarantine file: %v", err)
	}
}

// TestCheck: --check probes each new kind with its credentials (against
// the fakes, which check them; VictoriaLogs does not): exit 0 when they are
// accepted, 7 when refused, naming the reference and never the secret.
func TestCheck(t *testing.T) {
	const good, bad = "Z29vZDprZXktMTIzNDU2Nzg5MA==", "YmFkOmtleS0wOTg3NjU0MzIx"
	es := esfake.New(esfake.Options{APIKeys: []string{good}})
	t.Cleanup(es.Close)
	dd := ddfake.New(ddfake.Options{APIKeys: []string{good}})
	t.Cleanup(dd.Close)
	for _, c := range []struct {
		args []string
	}{
		{[]string{"--kind", "elastic", "--url", es.URL, "--api-key", "env:AP_TEST_CHECK_KEY"}},
		{[]string{"--kind", "datadog", "--url", dd.URL, "--api-key", "env:AP_TEST_CHECK_KEY"}},
	} {
		t.Setenv("AP_TEST_CHECK_KEY", good)
		if _, stderr, err := runShip(t, nil, append(c.args, "--check")...); err != nil || !strings.Contains(stderr, "accepts our credentials") {
			t.Errorf("%q with the good key: %v\n%s", c.args, err, stderr)
		}
		t.Setenv("AP_TEST_CHECK_KEY", bad)
		_, stderr, err := runShip(t, nil, append(c.args, "--check")...)
		if exitcode.Of(err) != exitcode.Config || !strings.Contains(err.Error(), "env:AP_TEST_CHECK_KEY") || strings.Contains(err.Error()+stderr, bad) {
			t.Errorf("%q with a bad key: %v (exit %d)\n%s", c.args, err, exitcode.Of(err), stderr)
		}
	}
}

// TestExecSecretRotation: an exec: key rotated while audit-ship runs is
// picked up after the 401 (the command is run again), without a restart
// and without losing a record.
func TestExecSecretRotation(t *testing.T) {
	const oldKey, newKey = "b2xkOmtleS0xMTExMTExMTE=", "bmV3OmtleS0yMjIyMjIyMjI="
	keyFile := writeFile(t, "key", oldKey+"\n")
	var es *esfake.Server
	es = esfake.New(esfake.Options{APIKeys: []string{oldKey}, Fault: func(r *esfake.Request) esfake.Fault {
		if r.N == 2 { // the key is rotated between the first and the second request
			if err := os.WriteFile(keyFile, []byte(newKey+"\n"), 0o600); err != nil {
				t.Error(err)
			}
			es.SetAPIKeys(newKey)
		}
		return esfake.Fault{}
	}})
	t.Cleanup(es.Close)
	lines := makeChain(t, 30, 1764244800123)
	stdout, stderr, err := runShip(t, framed(t, ndjsonOf(lines), "--max-count", "10"), "--kind", "elastic", "--url", es.URL,
		"--api-key", "exec:cat "+keyFile, "--inflight", "1", "--acks", "-")
	if err != nil {
		t.Fatalf("audit-ship: %v\n%s", err, stderr)
	}
	checkAcks(t, acksOf(t, stdout), lines, "elastic:default")
	if n := len(es.Docs()); n != 30 {
		t.Fatalf("%d documents, want 30", n)
	}
	if n := len(es.Requests()); n != 4 { // 1, 2 refused (401), 2 again with the new key, 3
		t.Fatalf("%d requests, want 4", n)
	}
	if strings.Contains(stderr, oldKey) || strings.Contains(stderr, newKey) {
		t.Fatalf("stderr shows a key:\n%s", stderr)
	}
}
