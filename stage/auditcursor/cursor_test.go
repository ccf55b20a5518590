package auditcursor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/auditdb"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// testDB is an audit database of 30 records with cursor splunk:prod at 20.
func testDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	ctx := context.Background()
	w, err := auditdb.OpenWriter(ctx, path, auditdb.WriterOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var evs [][]byte
	for i := range 30 {
		evs = append(evs, fmt.Appendf(nil, `{"kind":"k","tenantId":"t","i":%d}`, i))
	}
	if _, _, err := w.Append(ctx, evs, nil); err != nil {
		t.Fatal(err)
	}
	db, err := auditdb.OpenReader(ctx, path, auditdb.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, _, err := db.RecordHashAt(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CommitCursor(ctx, "splunk:prod", 20, h, time.UnixMilli(1764244800000)); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	code = exitcode.Of(err)
	if err != nil && code != exitcode.OK {
		fmt.Fprintf(&errb, "ERR %v", err)
	}
	return out.String(), errb.String(), code
}

func TestRunRefusals(t *testing.T) {
	db := testDB(t)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, exitcode.Usage, "no command given"},
		{[]string{"lsit", "--db", db}, exitcode.Usage, `did you mean "list"`},
		{[]string{"frobnicate"}, exitcode.Usage, `unknown command "frobnicate" (want list`},
		{[]string{"list"}, exitcode.Usage, "--db is required"},
		{[]string{"list", "--db", db, "splunk:prod"}, exitcode.Usage, "audit-cursor show --db " + db + " splunk:prod"},
		{[]string{"show", "--db", db}, exitcode.Usage, "which cursor?"},
		{[]string{"show", "--db", db, "a", "b"}, exitcode.Usage, "one cursor at a time"},
		{[]string{"show", "--db", db, "splunk:prd"}, exitcode.Usage, `did you mean "splunk:prod"?`},
		{[]string{"move", "--db", db, "splunk:prod"}, exitcode.Usage, "--to-seq N is required"},
		{[]string{"move", "--db", db, "splunk:prod", "--to-seq", "25"}, exitcode.Usage, "add --skip-records"},
		{[]string{"move", "--db", db, "splunk:prod", "--to-seq", "5", "--hash", strings.Repeat("0", 64)}, exitcode.Verify, "not moved"},
		{[]string{"move", "--db", db, "splunk:prod", "--to-seq", "5", "--bogus"}, exitcode.Usage, "bogus"},
		{[]string{"delete", "--db", db, "nope"}, exitcode.Usage, `"nope": no cursor of that name`},
		{[]string{"list", "--db", filepath.Join(t.TempDir(), "missing.db")}, exitcode.Database, "not found"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := run(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d with %q", code, stderr, tc.code, tc.msg)
			}
		})
	}
}

func TestRunListMoveDelete(t *testing.T) {
	db := testDB(t)
	out, _, code := run("list", "--db", db, "--json")
	var l struct {
		Head    int64
		Cursors []cursorJSON
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 {
		t.Fatalf("list --json: %q, %v, exit %d", out, err, code)
	}
	if l.Head != 30 || len(l.Cursors) != 1 || l.Cursors[0].LastSeq != 20 || l.Cursors[0].Lag != 10 ||
		len(l.Cursors[0].LastHash) != 64 || l.Cursors[0].UpdatedAt != "2025-11-27T12:00:00Z" {
		t.Errorf("list --json = %+v", l)
	}

	// NAME first, flags after; a move back logs what will be shipped again.
	out, stderr, code := run("move", "splunk:prod", "--db", db, "--to-seq=0", "--json")
	if code != 0 || !strings.Contains(stderr, "moved splunk:prod back from seq 20 to seq 0: its next run ships seq 1..20 (20 records) again") {
		t.Fatalf("move: exit %d, %q", code, stderr)
	}
	var mv struct {
		From, To       cursorJSON
		SkippedRecords int64
	}
	if err := json.Unmarshal([]byte(out), &mv); err != nil || mv.From.LastSeq != 20 || mv.To.LastSeq != 0 || mv.To.LastHash != "" || mv.To.Lag != 30 {
		t.Errorf("move --json = %q (%v)", out, err)
	}

	// A forward move with --skip-records is logged as such.
	_, stderr, code = run("move", "--db", db, "--to-seq", "7", "--skip-records", "splunk:prod")
	if code != 0 || !strings.Contains(stderr, "FORWARD from seq 0 to seq 7 (--skip-records): records seq 1..7 (7 records) are never shipped") {
		t.Errorf("skip: exit %d, %q", code, stderr)
	}
	out, _, _ = run("show", "--db", db, "splunk:prod")
	if !strings.Contains(out, "last seq:   7\n") || !strings.Contains(out, "lag:        23 records") {
		t.Errorf("show after skip: %q", out)
	}

	_, stderr, code = run("create", "--db", db, "elastic:prod")
	if code != 0 || !strings.Contains(stderr, "created cursor elastic:prod at seq 0: its first run ships seq 1..30 (30 records)") {
		t.Errorf("create: exit %d, %q", code, stderr)
	}
	_, stderr, code = run("create", "--db", db, "elastic:prod")
	if code != exitcode.Usage || !strings.Contains(stderr, "exists already") {
		t.Errorf("create again: exit %d, %q", code, stderr)
	}

	_, stderr, code = run("delete", "--db", db, "splunk:prod")
	if code != 0 || !strings.Contains(stderr, "deleted cursor splunk:prod (it was at seq 7)") {
		t.Errorf("delete: exit %d, %q", code, stderr)
	}
	run("delete", "--db", db, "elastic:prod")
	out, _, _ = run("list", "--db", db)
	if !strings.Contains(out, "no cursors (head of the log: seq 30)") {
		t.Errorf("list after delete: %q", out)
	}
}

func TestSkipRecordsOnlyOnTheCommandLine(t *testing.T) {
	db := testDB(t)
	t.Setenv("AUDIT_CURSOR_SKIP_RECORDS", "true")
	_, stderr, code := run("move", "--db", db, "--to-seq", "25", "splunk:prod")
	if code != exitcode.Usage || !strings.Contains(stderr, "--skip-records must be given on the command line") {
		t.Errorf("exit %d, %q", code, stderr)
	}
	_, stderr, code = run("move", "--db", db, "--to-seq", "25", "--skip-records=true", "splunk:prod")
	if code != 0 || !strings.Contains(stderr, "FORWARD") {
		t.Errorf("on the command line: exit %d, %q", code, stderr)
	}
}

func TestSplitArgs(t *testing.T) {
	c, err := parse("move", []string{"splunk:prod", "--db", "x.db", "--skip-records", "--to-seq", "4", "--json"}, &bytes.Buffer{})
	if err != nil || c.name != "splunk:prod" || c.db != "x.db" || !c.skip || c.toSeq != 4 || !c.json {
		t.Errorf("parse = %+v, %v", c, err)
	}
	c, err = parse("show", []string{"--db", "x.db", "--", "-odd-name"}, &bytes.Buffer{})
	if err != nil || c.name != "-odd-name" {
		t.Errorf("parse with -- = %+v, %v", c, err)
	}
}
