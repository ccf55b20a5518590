package auditdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// declaragentSchema is Declaragent's schema as its daemon runs it.
const declaragentSchema = `
CREATE TABLE IF NOT EXISTS audit_records(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, record_json TEXT NOT NULL, prev_hash TEXT NOT NULL, record_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS idx_audit_tenant_ts ON audit_records(tenant_id, ts);
CREATE INDEX IF NOT EXISTS idx_audit_tenant_kind ON audit_records(tenant_id, kind);
CREATE TABLE IF NOT EXISTS audit_export_cursor(exporter_name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
PRAGMA journal_mode=WAL;
`

// cli runs the sqlite3 CLI on db with script on stdin and returns its
// output; the test is skipped when the CLI is not installed.
func cli(t testing.TB, db, script string) string {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("sqlite3 CLI not installed")
	}
	cmd := exec.Command(bin, "-batch", "-bail", db)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", db, err, out)
	}
	return string(out)
}

// rawDB opens path read-write with modernc directly, as another process
// (the daemon) would.
func rawDB(t testing.TB, path, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=5000&"+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustExec runs statements on db.
func mustExec(t testing.TB, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// hexHash is the chain hash computed independently of package chain.
func hexHash(prev, canonical string) string {
	sum := sha256.Sum256([]byte(prev + "\n" + canonical))
	return hex.EncodeToString(sum[:])
}

// testRow is one row as a test expects it.
type testRow struct {
	Seq               int64
	TS                int64
	Tenant, Kind, Rec string
	Prev, Hash        string
}

// chainRows builds n chained rows with ts = base+seq*1000, tenants and
// kinds cycling through the given lists.
func chainRows(n int, base int64, tenants, kinds []string, pad int) []testRow {
	rows := make([]testRow, n)
	prev := ""
	for i := range rows {
		seq := int64(i + 1)
		ts := base + seq*1000
		tenant, kind := tenants[i%len(tenants)], kinds[i%len(kinds)]
		rec := fmt.Sprintf(`{"kind":%q,"pad":%q,"seq":%d,"tenantId":%q,"ts":%d}`, kind, strings.Repeat("x", pad), seq, tenant, ts)
		h := hexHash(prev, rec)
		rows[i] = testRow{Seq: seq, TS: ts, Tenant: tenant, Kind: kind, Rec: rec, Prev: prev, Hash: h}
		prev = h
	}
	return rows
}

// insertRows writes rows into the audit database at path (creating it with
// Declaragent's schema) through a separate connection, in one transaction.
func insertRows(t testing.TB, path string, rows []testRow) {
	t.Helper()
	db := rawDB(t, path, "_txlock=immediate")
	ctx := context.Background()
	for _, s := range strings.Split(declaragentSchema, ";\n") {
		if s = strings.TrimSpace(s); s != "" {
			mustExec(t, db, s)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO audit_records(seq, ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(?,?,?,?,?,?,?)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := st.ExecContext(ctx, r.Seq, r.TS, r.Tenant, r.Kind, r.Rec, r.Prev, r.Hash); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// collect scans db with f and returns what fn saw, copied.
func collect(t testing.TB, db *DB, f Filter) []testRow {
	t.Helper()
	var got []testRow
	last, err := db.Scan(context.Background(), f, func(r *Row) error {
		got = append(got, rowOf(r))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%+v): %v", f, err)
	}
	want := int64(0)
	if len(got) > 0 {
		want = got[len(got)-1].Seq
	}
	if last != want {
		t.Fatalf("Scan(%+v) returned lastSeq %d, want %d", f, last, want)
	}
	return got
}

func rowOf(r *Row) testRow {
	return testRow{Seq: r.Seq, TS: r.TS, Tenant: r.TenantID, Kind: r.Kind, Rec: string(r.RecordJSON), Prev: r.PrevHash, Hash: r.RecordHash}
}

func openReader(t testing.TB, path string, opt ReaderOptions) *DB {
	t.Helper()
	db, err := OpenReader(context.Background(), path, opt)
	if err != nil {
		t.Fatalf("OpenReader: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openWriter(t testing.TB, path string, opt WriterOptions) *Writer {
	t.Helper()
	w, err := OpenWriter(context.Background(), path, opt)
	if err != nil {
		t.Fatalf("OpenWriter: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "audit.db") }

func fixedNow(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }

func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
