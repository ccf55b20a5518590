package auditdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// cursorDB is a database of 20 chained rows with cursors splunk:prod at
// 15, file:archive at 20 (both committed by audit-ack, with their hash)
// and elastic:siem at 7 written by Declaragent alone (no hash).
func cursorDB(t *testing.T) (path string, rows []testRow) {
	t.Helper()
	path = tempDB(t)
	rows = chainRows(20, 1764244800000, []string{"a", "b"}, []string{"k"}, 4)
	insertRows(t, path, rows)
	w := openWriter(t, path, WriterOptions{})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		seq  int64
	}{{"splunk:prod", 15}, {"file:archive", 20}} {
		if _, err := w.CommitCursor(ctx, c.name, c.seq, rows[c.seq-1].Hash, time.UnixMilli(1764244900000)); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, rawDB(t, path, ""), `INSERT INTO audit_export_cursor VALUES('elastic:siem', 7, 1764244999000)`)
	return path, rows
}

func TestCursors(t *testing.T) {
	path, rows := cursorDB(t)
	ctx := context.Background()
	want := []Cursor{
		{Exporter: "elastic:siem", LastSeq: 7, UpdatedAt: time.UnixMilli(1764244999000), Found: true},
		{Exporter: "file:archive", LastSeq: 20, LastHash: rows[19].Hash, UpdatedAt: time.UnixMilli(1764244900000), Found: true},
		{Exporter: "splunk:prod", LastSeq: 15, LastHash: rows[14].Hash, UpdatedAt: time.UnixMilli(1764244900000), Found: true},
	}
	for name, src := range map[string]CursorSource{"reader": openReader(t, path, ReaderOptions{}), "writer": openWriter(t, path, WriterOptions{})} {
		got, err := src.Cursors(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d cursors, want %d: %+v", name, len(got), len(want), got)
		}
		for i := range want {
			if got[i] != want[i] && !(got[i].UpdatedAt.Equal(want[i].UpdatedAt) && eqButTime(got[i], want[i])) {
				t.Errorf("%s: cursor %d = %+v, want %+v", name, i, got[i], want[i])
			}
		}
	}
	// A Declaragent database that never had a cursor table has no cursors.
	empty := tempDB(t)
	mustExec(t, rawDB(t, empty, ""), `CREATE TABLE audit_records(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, record_json TEXT NOT NULL, prev_hash TEXT NOT NULL, record_hash TEXT NOT NULL)`)
	if got, err := openReader(t, empty, ReaderOptions{}).Cursors(ctx); err != nil || len(got) != 0 {
		t.Errorf("no cursor table: %v, %v", got, err)
	}
}

func eqButTime(a, b Cursor) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return a == b
}

func TestCheckCursorName(t *testing.T) {
	path, _ := cursorDB(t)
	ctx := context.Background()
	db := openReader(t, path, ReaderOptions{})
	noCursors := tempDB(t)
	insertRows(t, noCursors, chainRows(3, 0, []string{"a"}, []string{"k"}, 1))
	fresh := openReader(t, noCursors, ReaderOptions{})

	tests := []struct {
		name     string
		src      CursorSource
		cursor   string
		allowNew bool
		want     []string // substrings of the error; nil: no error
	}{
		{"exists", db, "splunk:prod", false, nil},
		{"exists without hash", db, "elastic:siem", false, nil},
		{"empty name is not checked", db, "", false, nil},
		{"first cursor of a database", fresh, "splunk:prod", false, nil},
		{"new cursor allowed", db, "splunk:prd", true, nil},
		{"typo", db, "splunk:prd", false, []string{`--from-cursor "splunk:prd": no cursor of that name`,
			`"elastic:siem", "file:archive", "splunk:prod"`, `did you mean "splunk:prod"?`, "ships every record again", "--new-cursor"}},
		{"case", db, "Splunk:Prod", false, []string{`did you mean "splunk:prod"?`}},
		{"instance only", db, "archive", false, []string{`did you mean "file:archive"?`}},
		{"nothing close", db, "datadog:eu", false, []string{"no cursor of that name", "--new-cursor"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCursorName(ctx, tc.src, "--from-cursor", tc.cursor, tc.allowNew)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("got nil error")
			}
			if code := exitcode.Of(err); code != exitcode.Usage {
				t.Errorf("exit code %d, want %d", code, exitcode.Usage)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.name == "nothing close" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("error %q suggests a name far from the one given", err)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	have := []string{"elastic:siem", "file:archive", "splunk:prod", "splunk:prod2"}
	tests := []struct{ name, want string }{
		{"splunk:prd", "splunk:prod"},
		{"splunk:prd2", "splunk:prod2"},
		{"SPLUNK:PROD", "splunk:prod"},
		{"elastic", "elastic:siem"},
		{"datadog:eu", ""},
		{"x", ""},
	}
	for _, tc := range tests {
		if got := Suggest(tc.name, have); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMoveCursor(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1764245000000)
	tests := []struct {
		name     string
		exporter string
		seq      int64
		opt      MoveOptions
		code     int    // 0: success
		msg      string // substring of the error
		skipped  int64
	}{
		{name: "back", exporter: "splunk:prod", seq: 10},
		{name: "back with the right hash", exporter: "splunk:prod", seq: 10, opt: MoveOptions{Hash: "@10"}},
		{name: "to the beginning", exporter: "splunk:prod", seq: 0},
		{name: "same seq", exporter: "splunk:prod", seq: 15},
		{name: "declaragent's cursor back", exporter: "elastic:siem", seq: 3},
		{name: "forward refused", exporter: "splunk:prod", seq: 18, code: exitcode.Usage,
			msg: "forward from seq 15 to seq 18: records seq 16..18 (3 records) would never be shipped to splunk:prod"},
		{name: "forward with skip", exporter: "splunk:prod", seq: 18, opt: MoveOptions{SkipRecords: true}, skipped: 3},
		{name: "past the head", exporter: "splunk:prod", seq: 21, opt: MoveOptions{SkipRecords: true}, code: exitcode.Usage, msg: "the log ends at seq 20"},
		{name: "negative", exporter: "splunk:prod", seq: -1, code: exitcode.Usage, msg: "negative"},
		{name: "wrong hash", exporter: "splunk:prod", seq: 10, opt: MoveOptions{Hash: "@11"}, code: exitcode.Verify, msg: "does not hold the record you mean"},
		{name: "malformed hash", exporter: "splunk:prod", seq: 10, opt: MoveOptions{Hash: "abc"}, code: exitcode.Usage, msg: "not 64 lowercase hex"},
		{name: "unknown", exporter: "splunk:prd", seq: 10, code: exitcode.Usage, msg: `did you mean "splunk:prod"?`},
		{name: "tampered row", exporter: "splunk:prod", seq: 5, code: exitcode.Verify, msg: "does not match its own record_hash"},
		{name: "erased row", exporter: "splunk:prod", seq: 6},
		{name: "removed row", exporter: "splunk:prod", seq: 8, code: exitcode.Usage, msg: "no row with that seq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, rows := cursorDB(t)
			raw := rawDB(t, path, "")
			mustExec(t, raw,
				`UPDATE audit_records SET record_json = '{"kind":"tool_call","x":1}' WHERE seq = 5`,
				`UPDATE audit_records SET record_json = '{"erasedAt":1,"kind":"erased","originalKind":"k","reason":"gdpr","tenantId":"b"}' WHERE seq = 6`,
				`DELETE FROM audit_records WHERE seq = 8`)
			if strings.HasPrefix(tc.opt.Hash, "@") {
				var i int
				for _, c := range tc.opt.Hash[1:] {
					i = i*10 + int(c-'0')
				}
				tc.opt.Hash = rows[i-1].Hash
			}
			w := openWriter(t, path, WriterOptions{})
			before, _ := w.Cursor(ctx, tc.exporter)
			mv, err := w.MoveCursor(ctx, tc.exporter, tc.seq, tc.opt, now)
			after, _ := w.Cursor(ctx, tc.exporter)
			if tc.code != 0 {
				if err == nil || exitcode.Of(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v (code %d), want code %d with %q", err, exitcode.Of(err), tc.code, tc.msg)
				}
				if before != after {
					t.Errorf("refused move changed the cursor: %+v -> %+v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantHash := ""
			if tc.seq > 0 {
				wantHash = rows[tc.seq-1].Hash
			}
			want := Cursor{Exporter: tc.exporter, LastSeq: tc.seq, LastHash: wantHash, UpdatedAt: now, Found: true}
			if !eqButTime(after, want) || !after.UpdatedAt.Equal(now) {
				t.Errorf("cursor after the move = %+v, want %+v", after, want)
			}
			if !eqButTime(mv.From, before) || !eqButTime(mv.To, want) || mv.Skipped != tc.skipped {
				t.Errorf("CursorMove = %+v, want from %+v to %+v, skipped %d", mv, before, want, tc.skipped)
			}
			// Declaragent's own reader sees the same last_seq.
			var seq int64
			if err := raw.QueryRow(`SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, tc.exporter).Scan(&seq); err != nil || seq != tc.seq {
				t.Errorf("audit_export_cursor.last_seq = %d, %v; want %d", seq, err, tc.seq)
			}
			// audit-ack's next commit continues from the moved cursor.
			if tc.seq < 20 && tc.seq+1 != 8 {
				got, err := w.CommitCursor(ctx, tc.exporter, tc.seq+1, rows[tc.seq].Hash, now.Add(time.Second))
				if err != nil || got != tc.seq+1 {
					t.Errorf("CommitCursor after the move = %d, %v; want %d", got, err, tc.seq+1)
				}
			}
		})
	}
}

func TestDeleteCursor(t *testing.T) {
	ctx := context.Background()
	path, rows := cursorDB(t)
	w := openWriter(t, path, WriterOptions{})
	old, err := w.DeleteCursor(ctx, "splunk:prod")
	if err != nil || old.LastSeq != 15 || old.LastHash != rows[14].Hash {
		t.Fatalf("DeleteCursor = %+v, %v", old, err)
	}
	for _, table := range []string{"audit_export_cursor", "auditpipe_cursor_hash"} {
		var n int
		if err := rawDB(t, path, "").QueryRow(`SELECT count(*) FROM ` + table + ` WHERE exporter_name = 'splunk:prod'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s still has %d rows for splunk:prod (%v)", table, n, err)
		}
	}
	cs, _ := w.Cursors(ctx)
	if len(cs) != 2 {
		t.Errorf("other cursors touched: %+v", cs)
	}
	_, err = w.DeleteCursor(ctx, "splunk:prod")
	var ue *UnknownCursorError
	if exitcode.Of(err) != exitcode.Usage || !errors.As(err, &ue) || len(ue.Have) != 2 {
		t.Errorf("second delete: %v", err)
	}
}

func TestCreateCursor(t *testing.T) {
	ctx := context.Background()
	path, _ := cursorDB(t)
	w := openWriter(t, path, WriterOptions{})
	now := time.UnixMilli(1764245000000)
	if err := CheckCursorName(ctx, w, "--exporter", "datadog:eu", false); exitcode.Of(err) != exitcode.Usage {
		t.Fatalf("before create: %v", err)
	}
	c, err := w.CreateCursor(ctx, "datadog:eu", now)
	if err != nil || c.LastSeq != 0 || !c.Found {
		t.Fatalf("CreateCursor = %+v, %v", c, err)
	}
	if err := CheckCursorName(ctx, w, "--exporter", "datadog:eu", false); err != nil {
		t.Errorf("after create: %v", err)
	}
	got, err := w.Cursor(ctx, "datadog:eu")
	if err != nil || !got.Found || got.LastSeq != 0 || got.LastHash != "" || !got.UpdatedAt.Equal(now) {
		t.Errorf("Cursor after create = %+v, %v", got, err)
	}
	// audit-ack's first commit moves it as it would a cursor it created.
	h := mustHashW(t, path, 3)
	if seq, err := w.CommitCursor(ctx, "datadog:eu", 3, h, now); err != nil || seq != 3 {
		t.Errorf("CommitCursor after create = %d, %v", seq, err)
	}
	if _, err := w.CreateCursor(ctx, "splunk:prod", now); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "exists already, at seq 15") {
		t.Errorf("create of an existing cursor: %v", err)
	}
}

func mustHashW(t *testing.T, path string, seq int64) string {
	t.Helper()
	h, ok, err := openReader(t, path, ReaderOptions{}).RecordHashAt(context.Background(), seq)
	if err != nil || !ok {
		t.Fatalf("RecordHashAt(%d): %v %v", seq, ok, err)
	}
	return h
}
