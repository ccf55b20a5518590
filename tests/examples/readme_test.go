package examples

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
)

// block is one command block of README.md: a ``` fence, or lines indented
// by four spaces after a blank line.
type block struct {
	line int
	text string
}

func readmeBlocks(t *testing.T) []block {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "```") {
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
				j++
			}
			out = append(out, block{i + 2, strings.Join(lines[i+1:j], "\n")})
			i = j
			continue
		}
		if strings.HasPrefix(l, "    ") && (i == 0 || strings.TrimSpace(lines[i-1]) == "") {
			j := i
			var body []string
			for j < len(lines) && (strings.HasPrefix(lines[j], "    ") || strings.TrimSpace(lines[j]) == "") {
				body = append(body, strings.TrimPrefix(lines[j], "    "))
				j++
			}
			out = append(out, block{i + 1, strings.TrimRight(strings.Join(body, "\n"), "\n")})
			i = j - 1
		}
	}
	return out
}

// readmeRun says how the test runs a README block, found by the start of
// its first line. Every block must have an entry: a new block that is not
// classified here fails the test, so none can be added without being run
// (or without a written reason why it cannot run here).
type readmeRun struct {
	skip string            // why it does not run here (then nothing else)
	prep string            // shell run before, in the same directory
	sub  map[string]string // documented substitutions in the block's text
	post string            // shell run after (checks)
	// output: the block is a message; prep's stderr must hold it verbatim.
	output bool
	env    []string // more environment
	// transform rewrites the block (after sub) into what runs.
	transform func(string) string
}

// The substitutions common to every block: a SIEM URL becomes the real
// VictoriaLogs (its HEC, Elasticsearch and Datadog intakes), system paths
// become the block's temporary directory.
func commonSubs(vl, dir string) *strings.Replacer {
	return strings.NewReplacer(
		"https://hec.example.com:8088", vl,
		"https://es.example.com:9200", vl+"/insert/elasticsearch",
		"file:/run/secrets/hec", "file:"+dir+"/hec.token",
		"/run/auditpipe/", dir+"/run/",
		"/var/lib/auditpipe/", dir+"/state/",
		"/etc/auditpipe/", dir+"/etc/",
		"/etc/declaragent/agent.yaml", dir+"/agent.yaml",
	)
}

var readmeTable = map[string]readmeRun{
	"scripts/demo.sh": {skip: "the block's second line, scripts/test.sh, runs this test (and the whole suite); scripts/demo.sh is run by TestReadmeDemo"},
	"audit-read --db audit.db --from-cursor splunk:prod --follow": {
		// A follow-mode pipeline never ends by itself, and its acker is a
		// second command: the test starts the acker in the background, then
		// the pipeline, and stops the pipeline with SIGTERM (as systemd
		// would) once the cursor reached the head, then the acker.
		transform: func(text string) string {
			i := strings.LastIndex(text, "\naudit-ack ")
			ack, _, _ := strings.Cut(text[i+1:], "#")
			return "set -m\n" + ack + " &\n" + text[:i] + " &\n" +
				`until [ "$(sqlite3 audit.db "select last_seq from audit_export_cursor where exporter_name='splunk:prod'")" = 500 ]; do sleep 0.1; done
kill -TERM %2; wait %2; kill -TERM %1; wait %1 || echo "audit-ack exit $?" >&2`
		},
	},
	"... | audit-checkpoint seal":         {skip: "elided arguments: TestReadmeDemoWitness runs this pipeline and the check (scripts/demo.sh --witness ships the checkpoints, then audit-fetch --checkpoints | check-store), stage/auditfetch's TestCheckStoreVictoriaLogs with these flags against VictoriaLogs"},
	"audit-checkpoint seal ... --witness": {skip: "elided arguments and a placeholder witness key: TestReadmeDemoWitness runs this set-up with a real litewitness (scripts/demo.sh --witness), stage/auditcheckpoint's TestRealWitness with the flags as written"},
	"sudo scripts/install.sh":             {skip: "installs into /usr/local as root: TestInstallDestdir runs scripts/install.sh into a temporary root (DESTDIR), TestMain with a temporary PREFIX"},
	"*/5 * * * * DB=":                     {skip: "a crontab line: TestCronDrain runs it (drain-once.sh's, which must be the same line) under env -i as cron does"},
	"go install ./cmd/...":                {skip: "run as written by tests/install_test.go (TestReadmeInstall)"},
	`{"seq":42`:                           {skip: "a record line's format, not a command"},
	`{"batch":`:                           {skip: "a batch header's format, not a command"},
	`{"ack":`:                             {skip: "an ack line's format, not a command"},
	"audit-consume --brokers k1:9092":     {skip: "needs Kafka brokers and a SIEM: tests/fleet runs this pipeline (with audit-batch --siem and audit-ship's URL and token) on a 3-broker kfake cluster into VictoriaLogs, as do stage/auditconsume TestCentralPipelineWiring and scripts/demo-fleet.sh (TestReadmeDemoFleet)"},
	"scripts/demo-fleet.sh":               {skip: "run by TestReadmeDemoFleet"},
	"fleet demo: ":                        {skip: "scripts/demo-fleet.sh's closing line, not a command: TestReadmeDemoFleet checks it"},
	"audit-read --db audit.db | audit-verify --report verify.json": {post: "grep -q . verify.json"},
	"audit-verify --mode report --report breaks.json export-2026-11.ndjson.gz": {
		prep: "audit-read --db audit.db --quiet | gzip > export-2026-11.ndjson.gz",
		post: "grep -q . breaks.json",
	},
	"audit-read --db audit.db --tenant acme --since 2026-11-01T00:00:00Z": {
		sub:  map[string]string{"2026-11-01T00:00:00Z": "2000-01-01T00:00:00Z"}, // the sample's records are from today
		post: "test \"$(wc -l < acme.ndjson)\" -gt 0 && ! grep -v '\"tenantId\":\"acme\"' acme.ndjson",
	},
	"audit-read --db audit.db --from-cursor file:archive": {
		post: "test \"$(zcat state/archive/* | wc -l)\" = 500",
	},
	"audit-read --db audit.db --from-cursor elastic:prod": {
		prep: "(audit-ack --fifo run/elastic.acks.fifo --db audit.db --exporter elastic:prod --quiet >ack.log 2>&1 & echo $! > ack.pid)",
		post: "sleep 0.5; kill -TERM $(cat ack.pid); sleep 0.5; test \"$(sqlite3 audit.db \"select last_seq from audit_export_cursor where exporter_name='elastic:prod'\")\" = 500",
	},
	"audit-read --db audit.db --from-cursor datadog:default": {
		// The agent.yaml block of Declaragent's documentation for Datadog;
		// the intake URL is VictoriaLogs' (--url), not --site's.
		sub:  map[string]string{"--agent-config /etc/declaragent/agent.yaml": "--agent-config /etc/declaragent/agent.yaml --url URL"},
		prep: "printf 'audit:\\n  export:\\n    kind: datadog\\n    apiKey: ${secret:env:DD_API_KEY}\\n    service: declaragent\\n' > agent.yaml",
		post: "test \"$(sqlite3 audit.db \"select last_seq from audit_export_cursor where exporter_name='datadog:default'\")\" = 500",
	},
	"audit-read --quarantine /var/lib/auditpipe/elastic.poison.ndjson": {
		// Three records set aside as audit-ship's quarantine writes them.
		prep: `audit-read --db audit.db --quiet | sed -n 1,3p | while IFS= read -r l; do printf '{"quarantinedAt":1,"exporter":"elastic:prod","seq":0,"recordHash":"","reason":"test","line":%s}\n' "$l"; done > state/elastic.poison.ndjson`,
	},
	"audit-cursor list --db audit.db": {
		// 41999/42000 are positions in a larger log: the sample has 500.
		sub:  map[string]string{"--to-seq 41999": "--to-seq 199"},
		prep: "audit-cursor create --db audit.db splunk:prod && audit-cursor move --db audit.db splunk:prod --to-seq 400 --skip-records && audit-cursor create --db audit.db splunk:old",
		post: "test \"$(sqlite3 audit.db \"select last_seq from audit_export_cursor where exporter_name='splunk:prod'\")\" = 199 && test -z \"$(sqlite3 audit.db \"select 1 from audit_export_cursor where exporter_name='splunk:old'\")\"",
	},
	`audit-read: --from-cursor "splunk:prd"`: {
		output: true,
		prep:   "audit-cursor create --db audit.db splunk:prod && audit-cursor create --db audit.db file:archive && ! audit-read --db audit.db --from-cursor splunk:prd",
	},
	"--metrics-listen 127.0.0.1:9464": {skip: "flags, not a command: every stage's metrics flags run in TestFanoutPorts and TestSystemdScripts, and in tests/ops"},
	"audit-checkpoint keygen": {
		sub: map[string]string{
			"audit-ship ...": "audit-ship --kind file --path shipped.ndjson --exporter splunk:prod --acks - | audit-ack --db audit.db --exporter splunk:prod",
			"[--init]":       "--init",
		},
		prep: "mkdir -p etc",
		post: "grep -q . checkpoints.ndjson && grep -q . proof.json",
	},
	"scripts/test.sh": {skip: "runs this test (scripts/test.sh); the fuzzers run without end; scripts/bench.sh and scripts/chaos.sh take minutes and are run on their own"},
}

// TestReadme runs every command block of README.md that can run here, as
// written but for the substitutions in readmeTable and commonSubs, against
// a real VictoriaLogs, each in a fresh directory with a 500-record
// audit.db.
func TestReadme(t *testing.T) {
	s := vlogs.Require(t)
	base := t.TempDir()
	genDB(t, base, "audit.db", 500)
	seen := map[string]bool{}
	for _, b := range readmeBlocks(t) {
		first := strings.TrimSpace(strings.SplitN(b.text, "\n", 2)[0])
		var key string
		for k := range readmeTable {
			if strings.HasPrefix(first, k) && len(k) > len(key) {
				key = k
			}
		}
		if key == "" {
			t.Errorf("README.md line %d: a command block this test does not know; run it here (readmeTable) or say why it cannot run:\n%s", b.line, b.text)
			continue
		}
		seen[key] = true
		r := readmeTable[key]
		if r.skip != "" {
			t.Logf("README.md line %d (%s): not run: %s", b.line, key, r.skip)
			continue
		}
		t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"run", "state", "etc"} {
				os.Mkdir(filepath.Join(dir, d), 0o700)
			}
			os.WriteFile(filepath.Join(dir, "hec.token"), []byte("t\n"), 0o600)
			sh(t, dir, "cp "+filepath.Join(base, "audit.db")+" audit.db")
			text := b.text
			for from, to := range r.sub {
				if !strings.Contains(text, from) {
					t.Fatalf("README.md line %d changed: the substitution of %q no longer applies:\n%s", b.line, from, text)
				}
				text = strings.ReplaceAll(text, from, strings.ReplaceAll(to, "URL", s.URL()))
			}
			text = commonSubs(s.URL(), dir).Replace(text)
			if r.transform != nil {
				text = r.transform(text)
			}
			env := []string{"ELASTIC_API_KEY=test-elastic-key", "DD_API_KEY=test-datadog-key"}
			for _, e := range r.env {
				env = append(env, strings.ReplaceAll(e, "URL", s.URL()))
			}
			if r.output {
				cmd := exec.Command("bash", "-c", r.prep)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
				out, _ := cmd.CombinedOutput()
				if !strings.Contains(string(out), strings.TrimSpace(b.text)) {
					t.Errorf("README.md line %d quotes a message the binary does not print.\nREADME:\n%s\nprinted:\n%s", b.line, b.text, out)
				}
				return
			}
			if r.prep != "" {
				sh(t, dir, r.prep, env...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", "set -eo pipefail\n"+text)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			cmd.Env = append(cmd.Env, env...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			cmd.WaitDelay = 5 * time.Second // a background job left holding the output
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("README.md line %d: %v\n%s\n--- output:\n%s", b.line, err, text, out)
			}
			if r.post != "" {
				sh(t, dir, r.post)
			}
		})
	}
	for k := range readmeTable {
		if !seen[k] {
			t.Errorf("readmeTable has %q, which no README block starts with any more: remove it", k)
		}
	}
}

// TestReadmeDemo runs scripts/demo.sh, README's first command, as written.
func TestReadmeDemo(t *testing.T) {
	if _, ok := vlogs.Available(); !ok && os.Getenv("CI") != "true" {
		t.Skip("victoria-logs not installed: scripts/demo.sh would install it (a download)")
	}
	cmd := exec.Command("scripts/demo.sh")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
}

// TestReadmeDemoFleet runs scripts/demo-fleet.sh, README's fleet command
// (with -short, 2000 records a host instead of 10000), and checks its
// closing line: nothing lost, no chain held.
func TestReadmeDemoFleet(t *testing.T) {
	if _, ok := vlogs.Available(); !ok && os.Getenv("CI") != "true" {
		t.Skip("victoria-logs not installed: scripts/demo-fleet.sh would install it (a download)")
	}
	args := []string{}
	if testing.Short() {
		args = append(args, "2000")
	}
	cmd := exec.Command("scripts/demo-fleet.sh", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo-fleet.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "fleet demo: ") || !strings.Contains(last, ": lost 0, duplicates ") || !strings.Contains(last, ", chains held 0, per-chain order kept") {
		t.Fatalf("closing line %q\n%s", last, out)
	}
	t.Log(last)
}

// TestReadmeDemoWitness runs scripts/demo.sh --witness: the pipeline seals
// checkpoints cosigned by a real litewitness, verifies with the quorum, and
// shows the witness refusing a second view signed with the same key.
func TestReadmeDemoWitness(t *testing.T) {
	lw := os.Getenv("AUDITPIPE_LITEWITNESS")
	if lw == "" {
		lw = filepath.Join(root, ".tools", "bin", "litewitness")
	}
	if _, err := os.Stat(lw); err != nil && os.Getenv("CI") != "true" {
		t.Skip("litewitness not installed: scripts/demo.sh --witness would install it (a download; scripts/install-litewitness.sh)")
	}
	if _, ok := vlogs.Available(); !ok && os.Getenv("CI") != "true" {
		t.Skip("victoria-logs not installed: scripts/demo.sh would install it (a download)")
	}
	cmd := exec.Command("scripts/demo.sh", "--witness", "2000")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "AUDITPIPE_TOOLS_BIN="+filepath.Dir(lw))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh --witness: %v\n%s", err, out)
	}
	for _, want := range []string{"— witness.demo.example/w1 ", "error witness_refused: witness witness.demo.example/w1",
		"error unwitnessed: seq 1..2000", "demo: the witness refused the forged view",
		// the SIEM's copy: whole, then records and a checkpoint deleted in VictoriaLogs
		"the store holds 2000 records (up to seq 2000) and 1 checkpoint sizes; 0 finding(s)",
		"error store_missing_records: seq 100..102", "error store_missing_checkpoint: size 2000: the store lacks the checkpoint of size 2000",
		"demo: check-store named what the SIEM lost (exit 3)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
