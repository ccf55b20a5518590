package auditfetch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/litewitness"
	"github.com/auditpipe/auditpipe/internal/vlogs"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
	"github.com/auditpipe/auditpipe/stage/auditcheckpoint"
	"github.com/auditpipe/auditpipe/stage/auditfetch"
	"github.com/auditpipe/auditpipe/stage/auditship"
)

// startVL starts a real VictoriaLogs with its delete API enabled: the SIEM
// admin's power the attacks below use.
func startVL(t *testing.T) *vlogs.Server {
	t.Helper()
	vlogs.Require(t) // skips (or fails under CI) without the binary
	bin, _ := vlogs.Available()
	s, err := vlogs.Start(context.Background(), vlogs.Options{Binary: bin, Args: []string{"-delete.enable"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// vlDelete deletes the events filter matches, as an admin of the store
// would (POST /delete/run_task), and waits for the task to end.
func vlDelete(t *testing.T, vl *vlogs.Server, filter string) {
	t.Helper()
	resp, err := http.PostForm(vl.URL()+"/delete/run_task", url.Values{"filter": {filter}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete %q: HTTP %d %s", filter, resp.StatusCode, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(vl.URL() + "/delete/active_tasks")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(b)) == "[]" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete %q still running: %s", filter, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stageRun runs one stage's Run and returns its exit code, stdout, stderr.
func stageRun(run func(context.Context, []string, io.Reader, io.Writer, io.Writer) error, stdin []byte, args ...string) (int, []byte, string) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return cli.Report("stage", err, &errb), out.Bytes(), errb.String()
}

// TestCheckStoreVictoriaLogs (issue 16 items 1 and 4, end to end, real
// VictoriaLogs and a real litewitness): records of a database go through
// seal --emit-checkpoints (cosigned by litewitness) | audit-batch |
// audit-ship into VictoriaLogs, for each kind; audit-fetch brings back the
// records and the checkpoints; check-store passes the whole copy, then
// names each loss the store's admin causes with the delete API: records
// deleted (their seq range, and the checkpoint that signed them), a
// checkpoint deleted (its size), the cosigned notes deleted (the tail
// left unwitnessed).
func TestCheckStoreVictoriaLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	t.Setenv("AP_TEST_HEC_TOKEN", "00000000-0000-0000-0000-000000000000")
	t.Setenv("AP_TEST_DD_KEY", "0123456789abcdef0123456789abcdef")
	const n = 60
	lines := chain(t, n)
	for _, kind := range []struct {
		name    string
		ship    []string
		seq     string // the record's seq field
		cpSize  string // the checkpoint's size field
		cpWhere string // what selects this kind's checkpoint events
	}{
		{"splunk", []string{"--token", "env:AP_TEST_HEC_TOKEN", "--host", "web1"}, "fields.seq", "fields.checkpointSize", `fields.type:="checkpoint"`},
		{"elastic", []string{"--url-path", "/insert/elasticsearch"}, "seq", "checkpointSize", `type:="checkpoint"`},
		{"datadog", []string{"--api-key", "env:AP_TEST_DD_KEY", "--hostname", "web1"}, "seq", "checkpointSize", `type:="checkpoint"`},
	} {
		t.Run(kind.name, func(t *testing.T) {
			dir := t.TempDir()
			skey, vkey := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
			const origin = "auditpipe.test/vlogs"
			if _, err := checkpoint.GenerateKeyFiles(origin, skey, vkey); err != nil {
				t.Fatal(err)
			}
			pub, _ := os.ReadFile(vkey)
			w := litewitness.Start(t, "witness.test/lite", origin, strings.TrimSpace(string(pub)))
			wfile := filepath.Join(dir, "witnesses")
			os.WriteFile(wfile, []byte(w.VKey+"="+w.URL+"\n"), 0o644)
			vl := startVL(t)
			out := filepath.Join(dir, "checkpoints.ndjson")

			// The pipeline: seal | audit-batch | audit-ship.
			code, sealed, stderr := stageRun(auditcheckpoint.Run, lines, "seal", "--signer", skey, "--out", out, "--state", filepath.Join(dir, "seal.state"),
				"--every", "10", "--witness-file", wfile, "--emit-checkpoints", "--quiet")
			if code != 0 {
				t.Fatalf("seal: exit %d: %s", code, stderr)
			}
			// 6 signed, and the witness's cosignatures: of the newest at
			// least (a witness behind is sent the newest checkpoint only).
			if c, cos := bytes.Count(sealed, []byte(`{"checkpoint":`)), bytes.Count(sealed, []byte(`— witness.test/lite`)); c < 7 || cos < 1 ||
				!bytes.Contains(sealed, []byte(`\n60\n`)) {
				t.Fatalf("seal wrote %d checkpoint lines (%d cosigned), want 6 signed and at least the newest cosigned:\n%s", c, cos, stderr)
			}
			ncp := bytes.Count(sealed, []byte(`{"checkpoint":`))
			code, batches, stderr := stageRun(auditbatch.Run, sealed, "--max-count", "7", "--quiet")
			if code != 0 {
				t.Fatalf("audit-batch: exit %d: %s", code, stderr)
			}
			u := vl.URL()
			args := []string{"--kind", kind.name, "--exporter", kind.name + ":prod", "--acks", "-", "--quiet"}
			for i := 0; i < len(kind.ship); i++ {
				if kind.ship[i] == "--url-path" {
					u += kind.ship[i+1]
					i++
					continue
				}
				args = append(args, kind.ship[i])
			}
			code, acks, stderr := stageRun(auditship.Run, batches, append(args, "--url", u)...)
			if code != 0 {
				t.Fatalf("audit-ship: exit %d: %s", code, stderr)
			}
			if !bytes.Contains(acks, []byte(`"lastSeq":60`)) || bytes.Contains(acks, []byte("checkpoint")) {
				t.Fatalf("acks: %s", acks)
			}
			ctx := context.Background()
			if _, err := vl.WaitCount(ctx, `*`, n+ncp, 30*time.Second); err != nil {
				t.Fatal(err)
			}

			check := func(t *testing.T, want ...string) {
				t.Helper()
				cps := filepath.Join(dir, "siem-checkpoints.ndjson")
				code, recs, stderr := stageRun(auditfetch.Run, nil, "--url", vl.URL(), "--kind", kind.name, "--checkpoints", cps)
				if code != 0 {
					t.Fatalf("audit-fetch: exit %d: %s", code, stderr)
				}
				code, _, stderr = stageRun(auditcheckpoint.Run, recs, "check-store", "--verifier", vkey, "--witness-key", wfile,
					"--checkpoints", cps, "--reference", out, "--every", "10")
				if len(want) == 0 {
					if code != 0 {
						t.Fatalf("check-store: exit %d: %s", code, stderr)
					}
					return
				}
				if code != exitcode.Verify {
					t.Fatalf("check-store: exit %d, want 3: %s", code, stderr)
				}
				for _, w := range want {
					if strings.Count(stderr, w) != 1 {
						t.Errorf("check-store does not say %q once:\n%s", w, stderr)
					}
				}
				if got := strings.Count(stderr, "audit-checkpoint: error "); got != len(want) {
					t.Errorf("%d findings, want %d:\n%s", got, len(want), stderr)
				}
				t.Logf("check-store:\n%s", stderr)
			}
			t.Run("whole", func(t *testing.T) { check(t) })
			vlDelete(t, vl, kind.seq+`:in("12","13","14")`)
			t.Run("records deleted", func(t *testing.T) {
				check(t, "error store_missing_records: seq 12..14, size 20: the store lacks seqs 12..14 (3 records), signed by the checkpoint of size 20 the store holds")
			})
			vlDelete(t, vl, kind.cpWhere+" "+kind.cpSize+`:in("30")`)
			t.Run("checkpoint deleted", func(t *testing.T) {
				check(t, "error store_missing_records: seq 12..14",
					"error store_missing_checkpoint: size 30: the store lacks the checkpoint of size 30",
					"error store_missing_checkpoint: seq 21..30, size 30: the store lacks the checkpoint of size 30 (seal signs every 10 records)")
			})
			vlDelete(t, vl, kind.cpWhere+` _msg:"witness.test/lite"`)
			t.Run("cosignatures deleted", func(t *testing.T) {
				check(t, "error store_missing_records: seq 12..14",
					"error store_missing_checkpoint: size 30: the store lacks the checkpoint of size 30",
					"error store_missing_checkpoint: seq 21..30, size 30",
					"error unwitnessed: seq 1..60: the store's seqs 1..60 are not covered by a checkpoint it holds with 1 witness cosignatures (the newest such is of size 0)")
			})
			// The tail and its checkpoint: named against --reference.
			vlDelete(t, vl, kind.seq+`:in("51","52","53","54","55","56","57","58","59","60")`)
			vlDelete(t, vl, kind.cpWhere+" "+kind.cpSize+`:in("60")`)
			t.Run("tail and its checkpoint deleted", func(t *testing.T) {
				check(t, "error store_missing_records: seq 12..14",
					"error store_missing_checkpoint: size 30: the store lacks the checkpoint of size 30",
					"error store_missing_checkpoint: seq 21..30, size 30",
					"error store_missing_checkpoint: size 60: the store lacks the checkpoint of size 60",
					"error store_missing_records: seq 51..60, size 60: the store lacks seqs 51..60 (10 records), signed by the reference checkpoint of size 60, which the store lacks too",
					"error unwitnessed: seq 1..50")
			})
		})
	}
}

// TestCheckpointsAfterRestartVictoriaLogs: at-least-once for checkpoints.
// The pipeline stops right after record 30 was shipped and acked but
// before the checkpoint of size 30 behind it was (the batch of that line
// never went out): the store lacks it, and check-store says so. The
// restart from the cursor (seq 31) makes seal carry that checkpoint again,
// and afterwards the store's copy is whole.
func TestCheckpointsAfterRestartVictoriaLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	t.Setenv("AP_TEST_HEC_TOKEN", "00000000-0000-0000-0000-000000000000")
	lines := chain(t, 60)
	dir := t.TempDir()
	skey, vkey := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
	if _, err := checkpoint.GenerateKeyFiles("auditpipe.test/restart", skey, vkey); err != nil {
		t.Fatal(err)
	}
	vl := startVL(t)
	out, state := filepath.Join(dir, "checkpoints.ndjson"), filepath.Join(dir, "seal.state")
	seal := func(in []byte) []byte {
		code, sealed, stderr := stageRun(auditcheckpoint.Run, in, "seal", "--signer", skey, "--out", out, "--state", state, "--every", "10", "--emit-checkpoints", "--quiet")
		if code != 0 {
			t.Fatalf("seal: exit %d: %s", code, stderr)
		}
		return sealed
	}
	ship := func(in []byte) string {
		code, acks, stderr := stageRun(auditship.Run, in, "--kind", "splunk", "--url", vl.URL(), "--token", "env:AP_TEST_HEC_TOKEN", "--exporter", "splunk:prod", "--acks", "-", "--quiet")
		if code != 0 {
			t.Fatalf("audit-ship: exit %d: %s", code, stderr)
		}
		return string(acks)
	}
	check := func() (int, string) {
		cps := filepath.Join(dir, "siem-checkpoints.ndjson")
		code, recs, stderr := stageRun(auditfetch.Run, nil, "--url", vl.URL(), "--kind", "splunk", "--checkpoints", cps)
		if code != 0 {
			t.Fatalf("audit-fetch: exit %d: %s", code, stderr)
		}
		code, _, stderr = stageRun(auditcheckpoint.Run, recs, "check-store", "--verifier", vkey, "--checkpoints", cps, "--reference", out, "--every", "10")
		return code, stderr
	}
	// Seal ran ahead to 60; the shipper took everything up to record 30
	// and stopped: the checkpoint line of size 30, after it, was not sent.
	sealed := seal(lines)
	cut := bytes.Index(sealed, []byte(`{"seq":31,`))
	first := sealed[:cut]
	first = first[:bytes.LastIndex(first[:len(first)-1], []byte("\n"))+1] // drop the checkpoint line of size 30
	if !bytes.HasPrefix(first[bytes.LastIndex(first[:len(first)-1], []byte("\n"))+1:], []byte(`{"seq":30,`)) {
		t.Fatalf("the first part does not end with record 30:\n%s", first)
	}
	if acks := ship(first); !strings.Contains(acks, `"lastSeq":30`) {
		t.Fatalf("acks: %s", acks)
	}
	if _, err := vl.WaitCount(context.Background(), `*`, 30+2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	cut = bytes.Index(lines, []byte(`{"seq":31,`))
	code, stderr := check()
	if code != exitcode.Verify || !strings.Contains(stderr, "error store_missing_checkpoint: size 30: the store lacks the checkpoint of size 30") {
		t.Fatalf("after the stop: exit %d:\n%s", code, stderr)
	}
	// The restart from the cursor: audit-read --from-cursor gives 31..60.
	again := seal(lines[cut:])
	if !bytes.HasPrefix(again, []byte(`{"checkpoint":"auditpipe.test/restart\n30\n`)) {
		t.Fatalf("the restart does not begin with the checkpoint of size 30:\n%.300s", again)
	}
	ship(again)
	if _, err := vl.WaitCount(context.Background(), `*`, 60+6, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, stderr := check(); code != 0 {
		t.Fatalf("after the restart: exit %d:\n%s", code, stderr)
	}

	// The store's admin adds a checkpoint event of their own: a note of
	// size 60 with another root, under the log's name but not its key.
	forged := `{"checkpoint":"auditpipe.test/restart\n60\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— auditpipe.test/restart AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}`
	ingest(t, vl, map[string]any{"_msg": forged, "fields": map[string]string{"type": "checkpoint", "checkpointSize": "60"}})
	code, stderr = check()
	// The line is where the store put the forged event among the 7: events
	// of the same time come back in no fixed order, so the line named must
	// be the forged one in what audit-fetch wrote, whichever it is.
	m := regexp.MustCompile(`error unknown_key: the checkpoint at line (\d+) in the store: open checkpoint: unknown key: signed only by auditpipe\.test/restart\+00000000`).FindStringSubmatch(stderr)
	if code != exitcode.Verify || m == nil {
		t.Fatalf("a forged checkpoint event: exit %d:\n%s", code, stderr)
	}
	fetched, err := os.ReadFile(filepath.Join(dir, "siem-checkpoints.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(m[1])
	if rows := strings.Split(strings.TrimSuffix(string(fetched), "\n"), "\n"); len(rows) != 7 || n < 1 || n > 7 || !strings.Contains(rows[n-1], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") {
		t.Fatalf("the finding names line %d of the %d fetched checkpoints, which is not the forged one:\n%s", n, len(rows), fetched)
	}

	// And an event that claims to be a checkpoint but is not one: audit-fetch
	// stops (exit 4) naming the row, rather than hand on a partial set.
	ingest(t, vl, map[string]any{"_msg": "not a checkpoint", "fields": map[string]string{"type": "checkpoint"}})
	c, _, errs := stageRun(auditfetch.Run, nil, "--url", vl.URL(), "--kind", "splunk", "--checkpoints", filepath.Join(dir, "x.ndjson"))
	if c != exitcode.Input || !strings.Contains(errs, "its message is not a checkpoint line") {
		t.Fatalf("a bogus checkpoint event: exit %d:\n%s", c, errs)
	}
}

// ingest stores one event in VictoriaLogs as its JSON-lines intake takes it
// (nested objects are flattened: fields.type), and waits until it is seen.
func ingest(t *testing.T, vl *vlogs.Server, ev map[string]any) {
	t.Helper()
	before, err := vl.Count(context.Background(), "*")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev)
	resp, err := http.Post(vl.URL()+"/insert/jsonline", "application/stream+json", bytes.NewReader(append(b, '\n')))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := vl.WaitCount(context.Background(), "*", before+1, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
