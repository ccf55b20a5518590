package auditdb

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// vectorsDir holds the public golden vectors (docs/contract.md), committed
// with lib/chain's tests.
const vectorsDir = "../chain/testdata/"

// Appending the records of the public golden chain, with the real
// canonical form and hash (the defaults), reproduces its hashes and
// canonical forms exactly.
func TestAppendGoldenVectors(t *testing.T) {
	lines := readLines(t, vectorsDir+"chain-public.ndjson")
	canon := readLines(t, vectorsDir+"chain-public.canonical.ndjson")
	path := tempDB(t)
	w := openWriter(t, path, WriterOptions{Create: true})
	ctx := context.Background()
	type vec struct {
		Seq        int64           `json:"seq"`
		TS         int64           `json:"ts"`
		TenantID   string          `json:"tenantId"`
		Kind       string          `json:"kind"`
		Record     json.RawMessage `json:"record"`
		PrevHash   string          `json:"prevHash"`
		RecordHash string          `json:"recordHash"`
		Canonical  string          `json:"canonical"`
	}
	var want []vec
	var events [][]byte
	for i, l := range lines {
		var v, c vec
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(canon[i]), &c); err != nil {
			t.Fatal(err)
		}
		v.Canonical = c.Canonical
		want = append(want, v)
		events = append(events, v.Record)
	}
	// In batches of various sizes, so that the tail is read back between
	// transactions.
	for i := 0; i < len(events); {
		n := min(1+i%4, len(events)-i)
		first, last, err := w.Append(ctx, events[i:i+n], fixedNow(1))
		if err != nil {
			t.Fatalf("append %d..: %v", i+1, err)
		}
		if first != int64(i+1) || last != int64(i+n) {
			t.Fatalf("append %d..%d returned %d..%d", i+1, i+n, first, last)
		}
		i += n
	}
	db := openReader(t, path, ReaderOptions{})
	got := collect(t, db, Filter{})
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i, g := range got {
		v := want[i]
		if g.Seq != v.Seq || g.TS != v.TS || g.Tenant != v.TenantID || g.Kind != v.Kind ||
			g.Prev != v.PrevHash || g.Hash != v.RecordHash || g.Rec != v.Canonical {
			t.Errorf("seq %d:\n got %+v\nwant %+v", v.Seq, g, v)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestAppendEvents(t *testing.T) {
	const now = 1764244800777
	cases := []struct {
		name, event                      string
		wantTS                           int64
		wantTenant, wantKind, wantRecord string
	}{
		{"full", `{"ts":1764244800123,"tenantId":"acme","kind":"tool_call","b":1,"a":[2,1]}`,
			1764244800123, "acme", "tool_call", `{"a":[2,1],"b":1,"kind":"tool_call","tenantId":"acme","ts":1764244800123}`},
		{"no ts", `{"kind":"x","tenantId":"acme","zz":true}`,
			now, "acme", "x", `{"kind":"x","tenantId":"acme","ts":1764244800777,"zz":true}`},
		{"only kind", ` {"kind":"x"} `, now, "_system", "x", `{"kind":"x","ts":1764244800777}`},
		{"integral float ts", `{"kind":"x","ts":17.0e1}`, 170, "_system", "x", `{"kind":"x","ts":170}`},
		{"negative ts", `{"kind":"x","ts":-5}`, -5, "_system", "x", `{"kind":"x","ts":-5}`},
		{"source tenant", `{"kind":"x","ts":1,"sourceTenantId":"globex"}`, 1, "globex", "x", `{"kind":"x","sourceTenantId":"globex","ts":1}`},
		{"tenant wins", `{"kind":"x","ts":1,"sourceTenantId":"globex","tenantId":"acme"}`, 1, "acme", "x", `{"kind":"x","sourceTenantId":"globex","tenantId":"acme","ts":1}`},
		{"non-string tenant", `{"kind":"x","ts":1,"tenantId":7,"sourceTenantId":"globex"}`, 1, "globex", "x", `{"kind":"x","sourceTenantId":"globex","tenantId":7,"ts":1}`},
		{"empty tenant", `{"kind":"x","ts":1,"tenantId":""}`, 1, "_system", "x", `{"kind":"x","tenantId":"","ts":1}`},
		{"duplicate keys: last wins", `{"kind":"a","ts":1,"kind":"b","tenantId":"t1","tenantId":"t2"}`, 1, "t2", "b", `{"kind":"b","tenantId":"t2","ts":1}`},
		{"escaped key", `{"\u006bind":"x","ts":1}`, 1, "_system", "x", `{"kind":"x","ts":1}`},
		{"escaped value", `{"kind":"a\"b\u00e9","ts":1}`, 1, "_system", "a\"bé", `{"kind":"a\"bé","ts":1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := tempDB(t)
			w := openWriter(t, path, WriterOptions{Create: true})
			first, last, err := w.Append(context.Background(), [][]byte{[]byte(c.event)}, fixedNow(now))
			if err != nil || first != 1 || last != 1 {
				t.Fatalf("Append = %d, %d, %v", first, last, err)
			}
			got := collect(t, openReader(t, path, ReaderOptions{}), Filter{})
			want := testRow{Seq: 1, TS: c.wantTS, Tenant: c.wantTenant, Kind: c.wantKind, Rec: c.wantRecord, Hash: hexHash("", c.wantRecord)}
			if len(got) != 1 || got[0] != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if typ := cli(t, path, `SELECT typeof(record_json), typeof(ts) FROM audit_records;`); typ != "text|integer\n" {
				t.Errorf("column types %q, want text|integer (Declaragent reads record_json as text)", typ)
			}
		})
	}
}

func TestAppendRejects(t *testing.T) {
	path := tempDB(t)
	w := openWriter(t, path, WriterOptions{Create: true})
	ctx := context.Background()
	if _, _, err := w.Append(ctx, [][]byte{[]byte(`{"kind":"ok"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ event, msg string }{
		{`{"ts":1}`, "event has no kind"},
		{`{"kind":"","ts":1}`, "empty kind"},
		{`{"kind":7,"ts":1}`, "kind is number"},
		{`{"kind":null}`, "kind is null"},
		{`{"kind":"x","ts":"2025-01-01"}`, "not an integer"},
		{`{"kind":"x","ts":1.5}`, "not an integer"},
		{`{"kind":"x","ts":1e300}`, "not an integer"},
		{`{"kind":"x","ts":null}`, "not an integer"},
		{`[{"kind":"x"}]`, "not a JSON object"},
		{`"kind"`, "not a JSON object"},
		{`{"kind":"x"`, "invalid JSON"},
		{`{"kind":"x"} {}`, "invalid JSON"},
		{``, "invalid JSON"},
	}
	for _, c := range cases {
		// A good event before the bad one: nothing of the batch is written.
		_, _, err := w.Append(ctx, [][]byte{[]byte(`{"kind":"fine"}`), []byte(c.event)}, nil)
		var ee *EventError
		if !errors.As(err, &ee) || ee.Index != 1 || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want an EventError at index 1 saying %q", c.event, err, c.msg)
			continue
		}
		if code := exitcode.Of(err); code != exitcode.Input {
			t.Errorf("%s: exit code %d, want %d", c.event, code, exitcode.Input)
		}
	}
	if got := collect(t, openReader(t, path, ReaderOptions{}), Filter{}); len(got) != 1 {
		t.Errorf("rejected batches left %d rows, want 1", len(got))
	}
	if first, last, err := w.Append(ctx, nil, nil); first != 0 || last != 0 || err != nil {
		t.Errorf("empty Append = %d, %d, %v", first, last, err)
	}
}

// The canonical form and hash are the ones given in WriterOptions.
func TestAppendInjectedFuncs(t *testing.T) {
	path := tempDB(t)
	var calls int
	w := openWriter(t, path, WriterOptions{
		Create: true,
		Canonical: func(dst, raw []byte) ([]byte, error) {
			calls++
			return canon.Append(dst, raw)
		},
		Hash: func(dst []byte, prev string, canonical []byte) []byte {
			return append(dst, fmt.Sprintf("%064d", len(prev)+len(canonical))...)
		},
	})
	if _, _, err := w.Append(context.Background(), [][]byte{[]byte(`{"kind":"x","ts":1}`), []byte(`{"kind":"y"}`)}, fixedNow(2)); err != nil {
		t.Fatal(err)
	}
	got := collect(t, openReader(t, path, ReaderOptions{}), Filter{})
	// `{"kind":"x","ts":1}` is 19 bytes, `{"kind":"y","ts":2}` 19 more plus the 64 of prev.
	if len(got) != 2 || got[0].Hash != fmt.Sprintf("%064d", 19) || got[1].Prev != got[0].Hash || got[1].Hash != fmt.Sprintf("%064d", 64+19) {
		t.Errorf("rows %+v", got)
	}
	if calls != 3 { // once each, and again for the event that got a ts
		t.Errorf("Canonical called %d times, want 3", calls)
	}
}

// Several processes' worth of writers appending at once never fork the
// chain: seqs are contiguous and every row links to, and hashes from, the
// one before it.
func TestConcurrentAppenders(t *testing.T) {
	path := tempDB(t)
	const writers, appends = 4, 200
	ctx := context.Background()
	type span struct{ first, last int64 }
	spans := make(chan span, writers*appends)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each its own handle, as separate audit-append processes: all
			// of them racing to create the file and schema too.
			w, err := OpenWriter(ctx, path, WriterOptions{Create: true})
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range appends {
				n := 1 + rng.IntN(5)
				evs := make([][]byte, n)
				for j := range evs {
					evs[j] = fmt.Appendf(nil, `{"kind":"k%d","tenantId":"t%d","i":%d,"j":%d}`, g, g, i, j)
				}
				first, last, err := w.Append(ctx, evs, nil)
				if err != nil {
					errs <- fmt.Errorf("writer %d append %d: %w", g, i, err)
					return
				}
				if last-first+1 != int64(n) {
					errs <- fmt.Errorf("writer %d: %d events got seqs %d..%d", g, n, first, last)
					return
				}
				spans <- span{first, last}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(spans)
	for err := range errs {
		t.Fatal(err)
	}
	total := int64(0)
	covered := map[int64]bool{}
	for s := range spans {
		for q := s.first; q <= s.last; q++ {
			if covered[q] {
				t.Fatalf("seq %d returned to two appends", q)
			}
			covered[q] = true
			total++
		}
	}
	rows := collect(t, openReader(t, path, ReaderOptions{ChunkRows: 333}), Filter{})
	if int64(len(rows)) != total {
		t.Fatalf("%d rows, appends returned %d seqs", len(rows), total)
	}
	prev := ""
	for i, r := range rows {
		if r.Seq != int64(i+1) {
			t.Fatalf("row %d has seq %d", i+1, r.Seq)
		}
		if r.Prev != prev {
			t.Fatalf("seq %d: prev_hash %.12s, previous record_hash %.12s: the chain forked", r.Seq, r.Prev, prev)
		}
		c, err := canon.Append(nil, []byte(r.Rec))
		if err != nil || string(c) != r.Rec {
			t.Fatalf("seq %d: record_json not canonical: %s", r.Seq, r.Rec)
		}
		if h := hexHash(prev, r.Rec); r.Hash != h {
			t.Fatalf("seq %d: record_hash %s, recomputed %s", r.Seq, r.Hash, h)
		}
		prev = r.Hash
	}
	t.Logf("%d writers x %d appends: %d rows, one chain", writers, appends, len(rows))
}

func TestWriterOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := dir + "/missing.db"
	_, err := OpenWriter(ctx, missing, WriterOptions{})
	checkDBError(t, "OpenWriter", err, missing, ErrNotFound, "not found")
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("OpenWriter without Create created the file")
	}
	text := dir + "/text"
	os.WriteFile(text, []byte(strings.Repeat("not sqlite ", 500)), 0o644)
	for _, create := range []bool{false, true} {
		_, err = OpenWriter(ctx, text, WriterOptions{Create: create})
		checkDBError(t, "OpenWriter", err, text, ErrNotAuditDB, "not a database")
	}
	other := dir + "/other.db"
	cli(t, other, `CREATE TABLE accounts(id INTEGER PRIMARY KEY);`)
	for _, create := range []bool{false, true} {
		_, err = OpenWriter(ctx, other, WriterOptions{Create: create})
		checkDBError(t, "OpenWriter", err, other, ErrNotAuditDB, "audit_records")
	}
	if got := cli(t, other, `SELECT name FROM sqlite_master ORDER BY name;`); got != "accounts\n" {
		t.Errorf("a refused open changed the schema: %q", got)
	}

	// Create makes Declaragent's schema, in WAL mode, plus our table.
	path := dir + "/new.db"
	w := openWriter(t, path, WriterOptions{Create: true})
	w.Close()
	schema := cli(t, path, `PRAGMA journal_mode; SELECT sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name;`)
	want := "wal\n" + strings.Join([]string{
		"CREATE TABLE audit_export_cursor(exporter_name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
		"CREATE TABLE audit_records(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, record_json TEXT NOT NULL, prev_hash TEXT NOT NULL, record_hash TEXT NOT NULL)",
		"CREATE TABLE auditpipe_cursor_hash(exporter_name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, last_hash TEXT NOT NULL, updated_at INTEGER NOT NULL)",
		"CREATE INDEX idx_audit_tenant_kind ON audit_records(tenant_id, kind)",
		"CREATE INDEX idx_audit_tenant_ts ON audit_records(tenant_id, ts)",
	}, "\n") + "\n"
	if schema != want {
		t.Errorf("schema:\n%s\nwant:\n%s", schema, want)
	}

	// The connection runs as documented: FULL sync, the busy timeout.
	w = openWriter(t, path, WriterOptions{BusyTimeout: 1234 * time.Millisecond})
	for name, want := range map[string]int64{"synchronous": 2, "busy_timeout": 1234} {
		var v int64
		if err := w.db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil || v != want {
			t.Errorf("writer PRAGMA %s = %d, %v; want %d", name, v, err, want)
		}
	}
	w.Close()

	// Without Create, on a Declaragent-only database: the cursor hash
	// table is added, audit_records untouched.
	decl := dir + "/decl.db"
	cli(t, decl, declaragentSchema)
	w = openWriter(t, decl, WriterOptions{})
	w.Close()
	if got := cli(t, decl, `SELECT count(*) FROM sqlite_master WHERE name = 'auditpipe_cursor_hash';`); got != "1\n" {
		t.Errorf("acker did not create auditpipe_cursor_hash: %q", got)
	}
}

func TestCommitCursor(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	app := openWriter(t, path, WriterOptions{Create: true})
	var events [][]byte
	for i := range 30 {
		events = append(events, fmt.Appendf(nil, `{"kind":"k","i":%d}`, i))
	}
	if _, _, err := app.Append(ctx, events, nil); err != nil {
		t.Fatal(err)
	}
	app.Close()

	ack := openWriter(t, path, WriterOptions{})
	db := openReader(t, path, ReaderOptions{})
	hash := func(seq int64) string {
		h, ok, err := db.RecordHashAt(ctx, seq)
		if err != nil || !ok {
			t.Fatalf("RecordHashAt(%d): %v %v", seq, ok, err)
		}
		return h
	}
	const ex = "splunk:prod"
	steps := []struct {
		seq, want int64
		wantHash  string
		at        int64
		wantAt    int64
	}{
		{10, 10, hash(10), 1000, 1000},
		{5, 10, hash(10), 2000, 1000}, // lower: nothing moves, not even updated_at
		{10, 10, hash(10), 3000, 1000},
		{12, 12, hash(12), 4000, 4000},
	}
	for _, s := range steps {
		got, err := ack.CommitCursor(ctx, ex, s.seq, hash(s.seq), time.UnixMilli(s.at))
		if err != nil || got != s.want {
			t.Fatalf("CommitCursor(%d) = %d, %v; want %d", s.seq, got, err, s.want)
		}
		for _, c := range []func(context.Context, string) (Cursor, error){db.Cursor, ack.Cursor} {
			cur, err := c(ctx, ex)
			want := Cursor{Exporter: ex, LastSeq: s.want, LastHash: s.wantHash, UpdatedAt: time.UnixMilli(s.wantAt), Found: true}
			if err != nil || cur != want {
				t.Fatalf("after commit %d: Cursor = %+v, %v; want %+v", s.seq, cur, err, want)
			}
		}
	}
	// Another exporter is independent.
	if got, err := ack.CommitCursor(ctx, "vlogs:default", 3, hash(3), time.UnixMilli(5)); err != nil || got != 3 {
		t.Fatalf("second exporter: %d, %v", got, err)
	}

	// Declaragent's own tools still work on the file: its plain upsert
	// moves the cursor; our hash, now for another seq, is no longer given.
	cli(t, path, `INSERT INTO audit_export_cursor(exporter_name, last_seq, updated_at) VALUES('splunk:prod', 20, 9000)
		ON CONFLICT(exporter_name) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
		WHERE excluded.last_seq > audit_export_cursor.last_seq;`)
	cur, err := db.Cursor(ctx, ex)
	if want := (Cursor{Exporter: ex, LastSeq: 20, UpdatedAt: time.UnixMilli(9000), Found: true}); err != nil || cur != want {
		t.Errorf("after Declaragent's upsert: %+v, %v; want %+v", cur, err, want)
	}
	// Our next commit puts the two back in step.
	if got, err := ack.CommitCursor(ctx, ex, 25, hash(25), time.UnixMilli(10000)); err != nil || got != 25 {
		t.Fatalf("CommitCursor(25) = %d, %v", got, err)
	}
	if cur, _ := db.Cursor(ctx, ex); cur.LastSeq != 25 || cur.LastHash != hash(25) {
		t.Errorf("after recommit: %+v", cur)
	}
	if got := cli(t, path, `PRAGMA integrity_check; SELECT exporter_name, last_seq FROM audit_export_cursor ORDER BY 1;`); got != "ok\nsplunk:prod|25\nvlogs:default|3\n" {
		t.Errorf("sqlite3 CLI sees %q", got)
	}

	for _, bad := range []struct {
		ex   string
		seq  int64
		hash string
	}{{"", 1, ""}, {ex, -1, ""}, {ex, 1, "ABC"}, {ex, 1, strings.Repeat("A", 64)}} {
		if _, err := ack.CommitCursor(ctx, bad.ex, bad.seq, bad.hash, time.Now()); err == nil {
			t.Errorf("CommitCursor(%q, %d, %q) accepted", bad.ex, bad.seq, bad.hash)
		}
	}
}

// An ack that names a hash this database does not have at that seq, or a
// seq it does not have, does not move the cursor: exit code 3 and an error
// that names both hashes.
func TestCommitCursorRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	app := openWriter(t, path, WriterOptions{Create: true})
	if _, _, err := app.Append(ctx, [][]byte{[]byte(`{"kind":"k","i":1}`), []byte(`{"kind":"k","i":2}`)}, nil); err != nil {
		t.Fatal(err)
	}
	db := openReader(t, path, ReaderOptions{})
	h2, _, _ := db.RecordHashAt(ctx, 2)
	const ex = "splunk:prod"
	if got, err := app.CommitCursor(ctx, ex, 1, mustHash(t, db, 1), time.UnixMilli(1)); err != nil || got != 1 {
		t.Fatalf("matching ack: %d, %v", got, err)
	}
	other := strings.Repeat("e", 64)
	for _, c := range []struct {
		seq  int64
		hash string
		msg  string
	}{
		{2, other, `has record_hash "` + h2 + `" there`},
		{3, other, "has no seq 3 (its last is 2)"},
	} {
		_, err := app.CommitCursor(ctx, ex, c.seq, c.hash, time.UnixMilli(2))
		var mm *AckMismatchError
		if !errors.As(err, &mm) || exitcode.Of(err) != exitcode.Verify {
			t.Fatalf("seq %d: err %v (exit %d), want an AckMismatchError with exit 3", c.seq, err, exitcode.Of(err))
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "not moved") {
			t.Errorf("seq %d: message %q lacks %q or the shipped hash", c.seq, err, c.msg)
		}
		if cur, _ := db.Cursor(ctx, ex); cur.LastSeq != 1 {
			t.Fatalf("seq %d: cursor moved to %d", c.seq, cur.LastSeq)
		}
	}
	if got, err := app.CommitCursor(ctx, ex, 2, h2, time.UnixMilli(3)); err != nil || got != 2 {
		t.Fatalf("matching ack after refusals: %d, %v", got, err)
	}
}

func mustHash(t *testing.T, db *DB, seq int64) string {
	t.Helper()
	h, ok, err := db.RecordHashAt(context.Background(), seq)
	if err != nil || !ok {
		t.Fatalf("RecordHashAt(%d): %v %v", seq, ok, err)
	}
	return h
}

// Several audit-append processes creating the same new file at once all
// succeed: switching to WAL can meet SQLITE_BUSY without the busy handler
// being called, and must be retried.
func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	for round := range 40 {
		path := tempDB(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, err := OpenWriter(ctx, path, WriterOptions{Create: true})
				if err != nil {
					errs <- err
					return
				}
				defer w.Close()
				_, _, err = w.Append(ctx, [][]byte{[]byte(`{"kind":"k"}`)}, nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
