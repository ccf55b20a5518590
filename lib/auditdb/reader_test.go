package auditdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// A database made by the sqlite3 CLI with Declaragent's exact schema reads
// back row for row, and the record lines are exact.
func TestReadDeclaragentDB(t *testing.T) {
	path := tempDB(t)
	h1, h2, h3 := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	cli(t, path, declaragentSchema+`
INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES
 (1764244800123, 'acme', 'tool_call', '{"kind":"tool_call","tenantId":"acme","ts":1764244800123}', '', '`+h1+`'),
 (1764244800124, 'we"ird\' || char(10) || char(1) || char(8) || char(31) || 'é' || char(8232) || '<&>', 'policy_decision',
  '{"detail":{"s":"\u0001 é"},"kind":"policy_decision","ts":1764244800124}', '`+h1+`', '`+h2+`'),
 (1764244800125, '_system', 'k'||char(9)||char(13)||char(12), '[]', '`+h2+`', '`+h3+`');
`)
	db := openReader(t, path, ReaderOptions{})
	var lines []string
	var buf []byte
	last, err := db.Scan(context.Background(), Filter{}, func(r *Row) error {
		buf = AppendLine(buf[:0], r)
		lines = append(lines, string(buf))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != 3 {
		t.Errorf("lastSeq = %d, want 3", last)
	}
	want := []string{
		`{"seq":1,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{"kind":"tool_call","tenantId":"acme","ts":1764244800123},"prevHash":"","recordHash":"` + h1 + `"}`,
		`{"seq":2,"ts":1764244800124,"tenantId":"we\"ird\\\n\u0001\b\u001fé` + "\u2028" + `<&>","kind":"policy_decision","record":{"detail":{"s":"\u0001 é"},"kind":"policy_decision","ts":1764244800124},"prevHash":"` + h1 + `","recordHash":"` + h2 + `"}`,
		`{"seq":3,"ts":1764244800125,"tenantId":"_system","kind":"k\t\r\f","record":[],"prevHash":"` + h2 + `","recordHash":"` + h3 + `"}`,
	}
	if !reflect.DeepEqual(lines, want) {
		for i := range max(len(lines), len(want)) {
			var g, w string
			if i < len(lines) {
				g = lines[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("line %d:\n got %s\nwant %s", i+1, g, w)
			}
		}
	}
	head, err := db.HeadSeq(context.Background())
	if err != nil || head != 3 {
		t.Errorf("HeadSeq = %d, %v; want 3", head, err)
	}
	for seq, want := range map[int64]string{1: h1, 3: h3} {
		if h, ok, err := db.RecordHashAt(context.Background(), seq); err != nil || !ok || h != want {
			t.Errorf("RecordHashAt(%d) = %q, %v, %v", seq, h, ok, err)
		}
	}
	if h, ok, err := db.RecordHashAt(context.Background(), 4); err != nil || ok || h != "" {
		t.Errorf("RecordHashAt(4) = %q, %v, %v; want absent", h, ok, err)
	}
}

func TestEmptyDB(t *testing.T) {
	path := tempDB(t)
	cli(t, path, declaragentSchema)
	db := openReader(t, path, ReaderOptions{})
	if got := collect(t, db, Filter{}); len(got) != 0 {
		t.Errorf("empty db scanned %d rows", len(got))
	}
	if head, err := db.HeadSeq(context.Background()); head != 0 || err != nil {
		t.Errorf("HeadSeq = %d, %v", head, err)
	}
}

func TestFilters(t *testing.T) {
	const base = 1764244800000
	tenants := []string{"acme", "globex", "_system", "initech"}
	kinds := []string{"tool_call", "auth_check", "policy_decision"}
	all := chainRows(60, base, tenants, kinds, 10)
	// Holes in seq, as left by a pruned log, and a far jump, so that chunk
	// bounds cannot assume contiguous seqs.
	var rows []testRow
	for _, r := range all {
		if r.Seq%7 == 0 {
			continue
		}
		if r.Seq > 50 {
			r.Seq += 1000000
		}
		rows = append(rows, r)
	}
	path := tempDB(t)
	insertRows(t, path, rows)

	ms := func(seq int64) time.Time { return time.UnixMilli(base + seq*1000) }
	cases := []struct {
		name string
		f    Filter
		keep func(testRow) bool
	}{
		{"all", Filter{}, func(testRow) bool { return true }},
		{"from", Filter{FromSeq: 10}, func(r testRow) bool { return r.Seq >= 10 }},
		{"to", Filter{ToSeq: 10}, func(r testRow) bool { return r.Seq <= 10 }},
		{"from-to", Filter{FromSeq: 8, ToSeq: 21}, func(r testRow) bool { return r.Seq >= 8 && r.Seq <= 21 }},
		{"from-to-one", Filter{FromSeq: 9, ToSeq: 9}, func(r testRow) bool { return r.Seq == 9 }},
		{"from-to-hole", Filter{FromSeq: 14, ToSeq: 14}, func(r testRow) bool { return false }},
		{"to-below-from", Filter{FromSeq: 20, ToSeq: 10}, func(r testRow) bool { return false }},
		{"from-past-head", Filter{FromSeq: 2000000}, func(r testRow) bool { return false }},
		{"since", Filter{Since: ms(30)}, func(r testRow) bool { return r.TS >= base+30000 }},
		{"until", Filter{Until: ms(30)}, func(r testRow) bool { return r.TS < base+30000 }},
		{"since-until", Filter{Since: ms(12), Until: ms(40)}, func(r testRow) bool { return r.TS >= base+12000 && r.TS < base+40000 }},
		{"tenant", Filter{Tenants: []string{"globex"}}, func(r testRow) bool { return r.Tenant == "globex" }},
		{"tenants", Filter{Tenants: []string{"acme", "_system"}}, func(r testRow) bool { return r.Tenant == "acme" || r.Tenant == "_system" }},
		{"tenant-unknown", Filter{Tenants: []string{"nobody"}}, func(r testRow) bool { return false }},
		{"kinds", Filter{Kinds: []string{"auth_check", "tool_call"}}, func(r testRow) bool { return r.Kind != "policy_decision" }},
		{"combined", Filter{FromSeq: 5, ToSeq: 1000055, Since: ms(8), Until: ms(58), Tenants: []string{"acme", "globex"}, Kinds: []string{"tool_call"}},
			func(r testRow) bool {
				return r.Seq >= 5 && r.Seq <= 1000055 && r.TS >= base+8000 && r.TS < base+58000 &&
					(r.Tenant == "acme" || r.Tenant == "globex") && r.Kind == "tool_call"
			}},
	}
	for _, opt := range []ReaderOptions{{}, {ChunkRows: 3}, {ChunkRows: 1}, {ChunkRows: 5, ChunkBytes: 100}, {ChunkRows: 4, MmapSize: 1 << 20}} {
		db := openReader(t, path, opt)
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/rows%d-bytes%d-mmap%d", c.name, opt.ChunkRows, opt.ChunkBytes, opt.MmapSize), func(t *testing.T) {
				want := []testRow{}
				for _, r := range rows {
					if c.keep(r) {
						want = append(want, r)
					}
				}
				got := append([]testRow{}, collect(t, db, c.f)...)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got seqs %v\nwant %v", seqs(got), seqs(want))
				}
			})
		}
	}
	db := openReader(t, path, ReaderOptions{})
	if _, err := db.Scan(context.Background(), Filter{FromSeq: -1}, func(*Row) error { return nil }); err == nil {
		t.Error("negative FromSeq accepted")
	}
}

func seqs(rows []testRow) []int64 {
	s := []int64{}
	for _, r := range rows {
		s = append(s, r.Seq)
	}
	return s
}

// RecordJSON is valid during fn; the strings stay valid after it.
func TestScanRowLifetime(t *testing.T) {
	path := tempDB(t)
	rows := chainRows(25, 1, []string{"a", "b"}, []string{"k"}, 50)
	insertRows(t, path, rows)
	db := openReader(t, path, ReaderOptions{ChunkRows: 4})
	var tenants, hashes []string
	_, err := db.Scan(context.Background(), Filter{}, func(r *Row) error {
		if string(r.RecordJSON) != rows[r.Seq-1].Rec {
			t.Errorf("seq %d: record %s", r.Seq, r.RecordJSON)
		}
		tenants = append(tenants, r.TenantID)
		hashes = append(hashes, r.RecordHash)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if tenants[i] != r.Tenant || hashes[i] != r.Hash {
			t.Fatalf("seq %d: kept strings changed: %q %q", r.Seq, tenants[i], hashes[i])
		}
	}
}

func TestScanStops(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(30, 1, []string{"a"}, []string{"k"}, 5))
	db := openReader(t, path, ReaderOptions{ChunkRows: 4})

	boom := errors.New("boom")
	n := 0
	last, err := db.Scan(context.Background(), Filter{}, func(r *Row) error {
		if r.Seq == 6 {
			return boom
		}
		n++
		return nil
	})
	if !errors.Is(err, boom) || last != 5 || n != 5 {
		t.Errorf("fn error: last=%d n=%d err=%v; want 5, 5, boom", last, n, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []int64
	last, err = db.Scan(ctx, Filter{}, func(r *Row) error {
		got = append(got, r.Seq)
		if r.Seq == 7 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || last != 7 || !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("cancel: last=%d got=%v err=%v; want 7, 1..7, context.Canceled", last, got, err)
	}
	if code := exitcode.Of(err); code != exitcode.OK {
		t.Errorf("cancelled scan exit code %d, want 0", code)
	}
}

// Scan stops at the head it saw when it started; rows committed meanwhile
// are for Follow.
func TestScanStopsAtHead(t *testing.T) {
	path := tempDB(t)
	w := openWriter(t, path, WriterOptions{Create: true})
	ctx := context.Background()
	for range 5 {
		if _, _, err := w.Append(ctx, [][]byte{[]byte(`{"kind":"k"}`)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	db := openReader(t, path, ReaderOptions{ChunkRows: 2})
	var got []int64
	last, err := db.Scan(ctx, Filter{}, func(r *Row) error {
		got = append(got, r.Seq)
		if _, _, err := w.Append(ctx, [][]byte{[]byte(`{"kind":"k"}`)}, nil); err != nil {
			t.Fatal(err)
		}
		return nil
	})
	if err != nil || last != 5 || !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("got %v, last %d, err %v; want 1..5", got, last, err)
	}
}

// The reader cannot write, and reading leaves the database file as it was.
func TestReaderIsReadOnly(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(100, 1, []string{"a"}, []string{"k"}, 100))
	before := fileBytes(t, path)
	db := openReader(t, path, ReaderOptions{})
	collect(t, db, Filter{})
	if _, err := db.Cursor(context.Background(), "splunk:default"); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(1, 'a', 'k', '{}', '', '')`,
		`CREATE TABLE x(y)`,
		`PRAGMA journal_mode=DELETE`,
	} {
		if _, err := db.db.ExecContext(context.Background(), stmt); err == nil {
			t.Errorf("read-only handle ran %s", stmt)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, fileBytes(t, path)) {
		t.Error("reading changed the database file")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := dir + "/missing.db"
	text := write("notes.txt", "these are not the pages you are looking for\n"+strings.Repeat("x", 5000))
	empty := write("empty.db", "")
	otherDB := dir + "/other.db"
	cli(t, otherDB, `CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT);`)
	blankDB := dir + "/blank.db"
	cli(t, blankDB, `PRAGMA user_version=7; PRAGMA journal_mode=WAL;`)
	oldDB := dir + "/old.db"
	cli(t, oldDB, `CREATE TABLE audit_records(seq INTEGER PRIMARY KEY, ts INTEGER, record_json TEXT);`)

	cases := []struct {
		path string
		kind error
		msg  string
	}{
		{missing, ErrNotFound, "audit database not found"},
		{dir, ErrNotAuditDB, "is a directory"},
		{text, ErrNotAuditDB, "file is not a database"},
		{empty, ErrNotAuditDB, "no audit_records table"},
		{blankDB, ErrNotAuditDB, "no audit_records table"},
		{otherDB, ErrNotAuditDB, "no audit_records table"},
		{oldDB, ErrNotAuditDB, "no such column"},
	}
	for _, c := range cases {
		_, err := OpenReader(context.Background(), c.path, ReaderOptions{})
		checkDBError(t, "OpenReader", err, c.path, c.kind, c.msg)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReader created %s", missing)
	}
}

// checkDBError checks err is a *DBError of kind for path with exit code 5
// and a message naming the path, containing msg, and giving advice.
func checkDBError(t *testing.T, what string, err error, path string, kind error, msg string) {
	t.Helper()
	var dbe *DBError
	switch {
	case err == nil:
		t.Errorf("%s(%s): no error, want %v", what, path, kind)
		return
	case !errors.Is(err, kind) || !errors.As(err, &dbe):
		t.Errorf("%s(%s): %v (%T), want a *DBError of kind %v", what, path, err, err, kind)
		return
	}
	if dbe.Path != path {
		t.Errorf("%s(%s): DBError.Path = %q", what, path, dbe.Path)
	}
	if code := exitcode.Of(err); code != exitcode.Database {
		t.Errorf("%s(%s): exit code %d, want %d", what, path, code, exitcode.Database)
	}
	s := err.Error()
	if !strings.Contains(s, path) || !strings.Contains(s, msg) || !strings.Contains(s, "(") {
		t.Errorf("%s(%s): message %q should name the path, say %q and give advice", what, path, s, msg)
	}
}

// Garbled pages: reading them is ErrCorrupt, not a crash or a silent stop.
func TestCorrupt(t *testing.T) {
	path := tempDB(t)
	rows := chainRows(3000, 1, []string{"a", "b"}, []string{"k"}, 300)
	insertRows(t, path, rows)
	cli(t, path, `PRAGMA journal_mode=DELETE;`) // everything in the main file
	b := fileBytes(t, path)
	const page = 4096
	if len(b) < 20*page {
		t.Fatalf("database only %d bytes", len(b))
	}
	// Keep page 1 (header and schema), garble the rest of the first half.
	for i := page; i < len(b)/2; i++ {
		b[i] = byte(i*7 + 13)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := OpenReader(context.Background(), path, ReaderOptions{})
	if err == nil {
		defer db.Close()
		_, err = db.Scan(context.Background(), Filter{}, func(*Row) error { return nil })
	}
	checkDBError(t, "Scan", err, path, ErrCorrupt, "malformed")
}

// A reader that finds the database exclusively locked waits the busy
// timeout, then fails with ErrLocked; once the lock is gone it reads.
func TestLocked(t *testing.T) {
	for _, mode := range []string{"rollback-journal", "wal-exclusive-locking"} {
		t.Run(mode, func(t *testing.T) {
			path := tempDB(t)
			insertRows(t, path, chainRows(10, 1, []string{"a"}, []string{"k"}, 10))
			ctx := context.Background()
			other := rawDB(t, path, "")
			conn, err := other.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if mode == "rollback-journal" {
				// In rollback-journal mode BEGIN EXCLUSIVE locks out readers.
				mustExec(t, conn, `PRAGMA journal_mode=DELETE`, `BEGIN EXCLUSIVE`)
			} else {
				// In WAL mode, locking_mode=EXCLUSIVE keeps the file locked
				// after the first write, without a shared-memory index.
				mustExec(t, conn, `PRAGMA locking_mode=EXCLUSIVE`,
					`UPDATE audit_records SET kind = kind WHERE seq = 1`)
			}
			const timeout = 300 * time.Millisecond
			start := time.Now()
			_, err = OpenReader(ctx, path, ReaderOptions{BusyTimeout: timeout})
			waited := time.Since(start)
			checkDBError(t, "OpenReader", err, path, ErrLocked, "busy timeout of 300ms")
			if waited < timeout/2 {
				t.Errorf("gave up after %v, before the busy timeout %v", waited, timeout)
			}
			t.Logf("ErrLocked after %v: %v", waited, err)

			if mode == "rollback-journal" {
				mustExec(t, conn, `COMMIT`)
			} else {
				conn.Close()
				other.Close() // the pooled connection holds the lock
			}
			db := openReader(t, path, ReaderOptions{BusyTimeout: timeout})
			if got := collect(t, db, Filter{}); len(got) != 10 {
				t.Errorf("after unlock: %d rows", len(got))
			}
		})
	}
}

// Locked in the middle of a Scan: the error is ErrLocked too.
func TestLockedDuringScan(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(20, 1, []string{"a"}, []string{"k"}, 10))
	cli(t, path, `PRAGMA journal_mode=DELETE;`)
	ctx := context.Background()
	db := openReader(t, path, ReaderOptions{BusyTimeout: 100 * time.Millisecond, ChunkRows: 5})
	other := rawDB(t, path, "")
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = db.Scan(ctx, Filter{}, func(r *Row) error {
		if r.Seq == 3 {
			mustExec(t, conn, `BEGIN EXCLUSIVE`)
		}
		return nil
	})
	checkDBError(t, "Scan", err, path, ErrLocked, "locked")
	mustExec(t, conn, `ROLLBACK`)
}

func TestCursorWithoutTables(t *testing.T) {
	ctx := context.Background()
	// Only audit_records: no cursor table at all.
	path := tempDB(t)
	cli(t, path, strings.SplitAfter(declaragentSchema, ";")[0])
	db := openReader(t, path, ReaderOptions{})
	c, err := db.Cursor(ctx, "splunk:default")
	if err != nil || c.Found || c.LastSeq != 0 || c.Exporter != "splunk:default" {
		t.Errorf("no cursor table: %+v, %v", c, err)
	}

	// Declaragent's schema, a cursor row, no auditpipe_cursor_hash.
	path = tempDB(t)
	cli(t, path, declaragentSchema+`INSERT INTO audit_export_cursor VALUES('splunk:default', 42, 1764244800999);`)
	db = openReader(t, path, ReaderOptions{})
	c, err = db.Cursor(ctx, "splunk:default")
	want := Cursor{Exporter: "splunk:default", LastSeq: 42, UpdatedAt: time.UnixMilli(1764244800999), Found: true}
	if err != nil || !reflect.DeepEqual(c, want) {
		t.Errorf("Declaragent cursor: %+v, %v; want %+v", c, err, want)
	}
	c, err = db.Cursor(ctx, "splunk:other")
	if err != nil || c.Found {
		t.Errorf("other exporter: %+v, %v", c, err)
	}
}

// The connection settings the DSN asks for are in effect.
func TestReaderPragmas(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(3, 1, []string{"a"}, []string{"k"}, 10))
	for _, opt := range []ReaderOptions{{}, {BusyTimeout: 1500 * time.Millisecond, MmapSize: 1 << 20}} {
		db := openReader(t, path, opt)
		want := map[string]int64{"query_only": 1, "busy_timeout": 5000, "mmap_size": 0}
		if opt.BusyTimeout > 0 {
			want["busy_timeout"], want["mmap_size"] = 1500, 1<<20
		}
		for name, w := range want {
			var v int64
			if err := db.db.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil || v != w {
				t.Errorf("%+v: PRAGMA %s = %d, %v; want %d", opt, name, v, err, w)
			}
		}
	}
}
