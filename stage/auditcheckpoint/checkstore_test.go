package auditcheckpoint

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestCheckStore: the store's copy of a sealed, witnessed log, with
// records deleted, a checkpoint deleted, a record altered: each named.
func TestCheckStore(t *testing.T) {
	ctx := context.Background()
	dir, skey, vkey, _, wfile := witnessSetup(t)
	out := filepath.Join(dir, "cp.ndjson")
	log := records(1, 30, 0, "")
	if r := run(t, ctx, log, "seal", "--signer", skey, "--out", out, "--every", "10", "--witness-file", wfile); r.code != 0 {
		t.Fatalf("seal: %d %s", r.code, r.stderr)
	}
	cpLines := strings.SplitAfter(strings.TrimSpace(string(mustRead(t, out))), "\n")
	recLines := strings.SplitAfter(string(log), "\n")
	write := func(name string, lines []string, drop func(i int) bool) string {
		var b strings.Builder
		for i, l := range lines {
			if drop == nil || !drop(i) {
				b.WriteString(l)
			}
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.TrimRight(b.String(), "\n")+"\n"), 0o644)
		return p
	}
	allCps := write("store-cp.ndjson", cpLines, nil)
	for _, tc := range []struct {
		name    string
		records string
		cps     string
		args    []string
		want    []string
	}{
		{"whole", write("whole.ndjson", recLines, nil), allCps, nil, nil},
		{"records deleted", write("del.ndjson", recLines, func(i int) bool { return i >= 11 && i <= 13 }), allCps, nil,
			[]string{"error store_missing_records: seq 12..14, size 20: the store lacks seqs 12..14 (3 records), signed by the checkpoint of size 20 the store holds"}},
		{"checkpoint deleted", write("whole2.ndjson", recLines, nil),
			write("cp-del.ndjson", cpLines, func(i int) bool { return strings.Contains(cpLines[i], `test/log\n20\n`) }),
			[]string{"--reference", out, "--every", "10"},
			[]string{"error store_missing_checkpoint: size 20: the store lacks the checkpoint of size 20 (reference checkpoint #",
				"error store_missing_checkpoint: seq 11..20, size 20: the store lacks the checkpoint of size 20 (seal signs every 10 records)"}},
		{"tail and its checkpoint deleted", write("tail.ndjson", recLines, func(i int) bool { return i >= 20 }),
			write("cp-tail.ndjson", cpLines, func(i int) bool { return strings.Contains(cpLines[i], `test/log\n30\n`) }),
			[]string{"--reference", out},
			[]string{"error store_missing_checkpoint: size 30: the store lacks the checkpoint of size 30 (reference checkpoint #",
				"error store_missing_records: seq 21..30, size 30: the store lacks seqs 21..30 (10 records), signed by the reference checkpoint of size 30, which the store lacks too"}},
		{"record altered", write("alt.ndjson", recLines, nil), allCps, nil, nil},
		{"unwitnessed tail", write("whole3.ndjson", recLines, nil),
			write("cp-unwit.ndjson", cpLines, func(i int) bool {
				return strings.Contains(cpLines[i], "— witness.test/w1")
			}),
			[]string{"--witness-key", wfile},
			[]string{"error unwitnessed: seq 1..30: the store's seqs 1..30 are not covered by a checkpoint it holds with 1 witness cosignatures (the newest such is of size 0)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := tc.records
			if tc.name == "record altered" {
				data := strings.Replace(string(mustRead(t, recs)), `{"n":7,"text":"event"}`, `{"n":7,"text":"EVENT"}`, 1)
				os.WriteFile(recs, []byte(data), 0o644)
				tc.want = []string{"error store_altered: seq 7: the store's seq 7 does not hash to its recordHash"}
			}
			args := append([]string{"check-store", "--verifier", vkey, "--checkpoints", tc.cps}, tc.args...)
			r := run(t, ctx, nil, append(args, recs)...)
			if len(tc.want) == 0 {
				if r.code != 0 {
					t.Fatalf("%d %s", r.code, r.stderr)
				}
				return
			}
			if r.code != exitcode.Verify {
				t.Fatalf("exit %d, want 3: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckStoreReadsCheckpointsAfterStdinStarts: in
// audit-fetch --checkpoints F | check-store --checkpoints F the file is
// written (whole) before the first record line; check-store reads it only
// once stdin has begun, so it never takes the empty or old file.
func TestCheckStoreReadsCheckpointsAfterStdinStarts(t *testing.T) {
	ctx := context.Background()
	dir, skey, vkey, _, _ := witnessSetup(t)
	out := filepath.Join(dir, "cp.ndjson")
	log := records(1, 30, 0, "")
	if r := run(t, ctx, log, "seal", "--signer", skey, "--out", out, "--every", "10"); r.code != 0 {
		t.Fatalf("seal: %d %s", r.code, r.stderr)
	}
	cps := filepath.Join(dir, "siem-cp.ndjson")
	os.WriteFile(cps, nil, 0o644) // as audit-fetch leaves it when it starts
	pr, pw := io.Pipe()
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.WriteFile(cps, mustRead(t, out), 0o644)
		pw.Write(log)
		pw.Close()
	}()
	var stdout, stderr bytes.Buffer
	err := Run(ctx, []string{"check-store", "--verifier", vkey, "--checkpoints", cps, "--reference", out, "--every", "10"}, pr, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "the store holds 30 records (up to seq 30) and 3 checkpoint sizes; 0 finding(s)") {
		t.Fatalf("%s", stderr.String())
	}
}
