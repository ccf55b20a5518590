package auditdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Scan and Follow read through SQLite's C API (capiConn): the bytes of
// every column come out exactly as stored, whatever they hold, and records
// larger than a chunk's byte budget are still read whole.
func TestScanUnusualValues(t *testing.T) {
	path := tempDB(t)
	big := `{"pad":"` + strings.Repeat("é", 5<<20) + `"}` // 10 MiB, more than DefaultChunkBytes
	recs := []string{
		"{\"nul\":\"a\x00b\"}\x00",              // NULs inside and at the end
		`{"utf8":"ü€😀 ` + "\u2028\u2029" + `"}`, // 2-, 3- and 4-byte UTF-8
		"", // empty
		big,
		`{"small":1}`,
		strings.Repeat("x", 3000),
	}
	var rows []testRow
	prev := ""
	tenants := []string{"acme", "", "quo\"te\\back\nline\x01", "日本", "acme"}
	for i, rec := range recs {
		h := hexHash(prev, rec)
		rows = append(rows, testRow{Seq: int64(i + 1), TS: int64(i) * -7, Tenant: tenants[i%len(tenants)],
			Kind: "k\t" + fmt.Sprint(i%2), Rec: rec, Prev: prev, Hash: h})
		prev = h
	}
	insertRows(t, path, rows)
	for _, opt := range []ReaderOptions{{}, {ChunkBytes: 100}, {ChunkRows: 1}} {
		db := openReader(t, path, opt)
		got := collect(t, db, Filter{})
		if len(got) != len(rows) {
			t.Fatalf("%+v: %d rows, want %d", opt, len(got), len(rows))
		}
		for i := range rows {
			if got[i] != rows[i] {
				t.Errorf("%+v: seq %d: got %#v, want %#v", opt, rows[i].Seq, short(got[i]), short(rows[i]))
			}
		}
		// The record line is the same as one built from the values.
		var line []byte
		i := 0
		if _, err := db.Scan(context.Background(), Filter{}, func(r *Row) error {
			line = AppendLine(line[:0], r)
			w := rows[i]
			want := AppendLine(nil, &Row{Seq: w.Seq, TS: w.TS, TenantID: w.Tenant, Kind: w.Kind,
				RecordJSON: []byte(w.Rec), PrevHash: w.Prev, RecordHash: w.Hash})
			if !bytes.Equal(line, want) {
				t.Errorf("%+v: seq %d: line differs", opt, r.Seq)
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func short(r testRow) testRow {
	if len(r.Rec) > 80 {
		r.Rec = r.Rec[:80] + fmt.Sprintf("...(%d bytes)", len(r.Rec))
	}
	return r
}

// The strings of a Row may be kept after the callback, across chunks and
// garbage collections, also when there are more distinct tenants and kinds
// than the scanner keeps one string of.
func TestScanKeptStrings(t *testing.T) {
	path := tempDB(t)
	n := maxNames + 500
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%05d", i)
	}
	rows := chainRows(n, 1, tenants, []string{"a", "b", "c"}, 20)
	insertRows(t, path, rows)
	db := openReader(t, path, ReaderOptions{ChunkRows: 97})
	var kept []testRow
	if _, err := db.Scan(context.Background(), Filter{}, func(r *Row) error {
		k := rowOf(r)
		k.Rec = ""
		kept = append(kept, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	// Another scan reuses the scanner's buffers.
	collect(t, db, Filter{Kinds: []string{"b"}})
	runtime.GC()
	for i, r := range rows {
		r.Rec = ""
		if kept[i] != r {
			t.Fatalf("seq %d: kept %+v, want %+v", r.Seq, kept[i], r)
		}
	}
}

// A scan's connection has the settings OpenReader's have.
func TestScanConnPragmas(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(3, 1, []string{"a"}, []string{"k"}, 10))
	for _, opt := range []ReaderOptions{{}, {MmapSize: 1 << 20}} {
		c, err := openCapi(path, time.Second, opt.MmapSize)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]int64{"query_only": 1, "mmap_size": opt.MmapSize} {
			st, err := c.prepare("PRAGMA " + name)
			if err != nil {
				t.Fatal(err)
			}
			var v int64
			if err := c.ints(context.Background(), st, &v); err != nil || v != want {
				t.Errorf("%+v: PRAGMA %s = %d, %v; want %d", opt, name, v, err, want)
			}
			c.finalize(st)
		}
		// Read-only twice over: query_only, and the file opened read-only.
		if err := c.exec(`INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(1, 'a', 'k', '{}', '', '')`); err == nil {
			t.Error("the scan connection wrote")
		}
		if err := c.exec(`PRAGMA query_only=0`); err != nil {
			t.Fatal(err)
		}
		err = c.exec(`INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(1, 'a', 'k', '{}', '', '')`)
		if err == nil || !strings.Contains(err.Error(), "readonly") {
			t.Errorf("insert without query_only: %v, want a readonly database error", err)
		}
		c.close()
	}
}

// Errors met on the scan connection are classified as the driver's are.
func TestScanConnErrors(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) string {
		path := tempDB(t)
		insertRows(t, path, chainRows(3000, 1, []string{"a", "b"}, []string{"k"}, 300))
		cli(t, path, `PRAGMA journal_mode=DELETE;`) // everything in the main file, no -wal
		return path
	}
	t.Run("locked", func(t *testing.T) {
		path := setup(t)
		const timeout = 200 * time.Millisecond
		db := openReader(t, path, ReaderOptions{BusyTimeout: timeout})
		conn, err := rawDB(t, path, "").Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, `BEGIN EXCLUSIVE`)
		start := time.Now()
		_, err = db.Scan(ctx, Filter{}, func(*Row) error { return nil })
		waited := time.Since(start)
		checkDBError(t, "Scan", err, path, ErrLocked, "busy timeout of 200ms: database is locked")
		if waited < timeout/2 {
			t.Errorf("gave up after %v, before the busy timeout %v", waited, timeout)
		}
		mustExec(t, conn, `ROLLBACK`)
		if got := collect(t, db, Filter{}); len(got) != 3000 {
			t.Errorf("after unlock: %d rows", len(got))
		}
	})
	t.Run("cancel-while-locked", func(t *testing.T) {
		path := setup(t)
		db := openReader(t, path, ReaderOptions{BusyTimeout: time.Minute})
		conn, err := rawDB(t, path, "").Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		mustExec(t, conn, `BEGIN EXCLUSIVE`)
		defer mustExec(t, conn, `ROLLBACK`)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = db.Scan(cctx, Filter{}, func(*Row) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("Scan: %v after %v, want the context's error at once", err, time.Since(start))
		}
		cctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := db.Follow(cctx, Filter{}, time.Millisecond, func(*Row) error { return nil }); err != nil {
			t.Errorf("Follow: %v, want nil", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		path := setup(t)
		db := openReader(t, path, ReaderOptions{})
		b := fileBytes(t, path)
		for i := 4096; i < len(b)/2; i++ { // keep page 1, the schema
			b[i] = byte(i*7 + 13)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := db.Scan(ctx, Filter{}, func(*Row) error { return nil })
		checkDBError(t, "Scan", err, path, ErrCorrupt, "malformed")
	})
	t.Run("not-sqlite", func(t *testing.T) {
		path := setup(t)
		db := openReader(t, path, ReaderOptions{})
		// Another file takes the path; a new connection opens it.
		db.mu.Lock()
		db.idle.close()
		db.idle = nil
		db.mu.Unlock()
		if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 500)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := db.Scan(ctx, Filter{}, func(*Row) error { return nil })
		checkDBError(t, "Scan", err, path, ErrNotAuditDB, "file is not a database")
	})
	t.Run("gone", func(t *testing.T) {
		path := setup(t)
		db := openReader(t, path, ReaderOptions{})
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		// The connection opened by OpenReader still reads the file.
		if got := collect(t, db, Filter{}); len(got) != 3000 {
			t.Errorf("%d rows", len(got))
		}
		db.mu.Lock()
		db.idle.close()
		db.idle = nil
		db.mu.Unlock()
		_, err := db.Scan(ctx, Filter{}, func(*Row) error { return nil })
		checkDBError(t, "Scan", err, path, ErrCantOpen, "unable to open")
	})
}

// After Close, Scan and Follow fail as the database/sql methods do,
// instead of opening a fresh connection.
func TestScanAfterClose(t *testing.T) {
	path := tempDB(t)
	w := openWriter(t, path, WriterOptions{Create: true})
	if _, _, err := w.Append(context.Background(), [][]byte{[]byte(`{"kind":"k"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	db, err := OpenReader(context.Background(), path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	n := 0
	if _, err := db.Scan(context.Background(), Filter{}, func(*Row) error { n++; return nil }); err == nil || n != 0 {
		t.Fatalf("Scan after Close: %d rows, err %v", n, err)
	}
	if err := db.Follow(context.Background(), Filter{}, 0, func(*Row) error { n++; return nil }); err == nil || n != 0 {
		t.Fatalf("Follow after Close: %d rows, err %v", n, err)
	}
}
