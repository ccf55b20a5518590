package auditdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// schema is Declaragent's audit schema, exactly (docs/contract.md section 1).
// OpenWriter with Create runs it, with PRAGMA journal_mode=WAL.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS audit_records(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, record_json TEXT NOT NULL, prev_hash TEXT NOT NULL, record_hash TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS idx_audit_tenant_ts ON audit_records(tenant_id, ts)`,
	`CREATE INDEX IF NOT EXISTS idx_audit_tenant_kind ON audit_records(tenant_id, kind)`,
	cursorTableSQL,
}

const (
	cursorTableSQL = `CREATE TABLE IF NOT EXISTS audit_export_cursor(exporter_name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL)`
	// auditpipe's own table, which Declaragent ignores.
	cursorHashTableSQL = `CREATE TABLE IF NOT EXISTS auditpipe_cursor_hash(exporter_name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, last_hash TEXT NOT NULL, updated_at INTEGER NOT NULL)`
)

const (
	insertSQL = `INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(?, ?, ?, ?, ?, ?)`
	tailSQL   = `SELECT record_hash FROM audit_records ORDER BY seq DESC LIMIT 1`
	// The monotonic upserts: a lower last_seq leaves the row as it is.
	upsertCursorSQL = `INSERT INTO audit_export_cursor(exporter_name, last_seq, updated_at) VALUES(?, ?, ?)
		ON CONFLICT(exporter_name) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
		WHERE excluded.last_seq > audit_export_cursor.last_seq`
	upsertHashSQL = `INSERT INTO auditpipe_cursor_hash(exporter_name, last_seq, last_hash, updated_at) VALUES(?, ?, ?, ?)
		ON CONFLICT(exporter_name) DO UPDATE SET last_seq = excluded.last_seq, last_hash = excluded.last_hash, updated_at = excluded.updated_at
		WHERE excluded.last_seq > auditpipe_cursor_hash.last_seq`
)

// WriterOptions configures OpenWriter. The zero value opens an existing
// audit database with the default busy timeout and the chain package's
// canonical form and hash.
type WriterOptions struct {
	// Create creates the file and Declaragent's schema if they are absent
	// (audit-append). Without it the file must already be an audit database
	// (audit-ack): ErrNotFound or ErrNotAuditDB otherwise.
	Create bool
	// BusyTimeout bounds the wait for the write lock, held by the daemon or
	// another writer, before ErrLocked. Default DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Canonical and Hash default to canon.Append and chain.AppendHexHash.
	// They are fields so that tests can substitute them.
	Canonical func(dst, raw []byte) ([]byte, error)
	Hash      func(dst []byte, prevHash string, canonical []byte) []byte
}

// Writer appends chained records and commits cursors. Its methods may be
// called from several goroutines; they are serialised.
type Writer struct {
	path  string
	db    *sql.DB
	busy  time.Duration
	canon func(dst, raw []byte) ([]byte, error)
	hash  func(dst []byte, prevHash string, canonical []byte) []byte

	mu       sync.Mutex
	parser   fastjson.Parser
	evs      []event
	canonBuf []byte // the canonical forms of the events of one Append
	scratch  []byte
	hashBuf  []byte
}

type event struct {
	ts           int64
	tenant, kind string
	end          int // canonical form is canonBuf[previous end:end]
}

// OpenWriter opens the audit database at path read-write.
//
// Every connection runs with synchronous=FULL: in WAL mode NORMAL may lose
// the last commits on power failure (the database stays consistent), which
// for an audit log is lost evidence and for a cursor is a commit that the
// caller was told is durable. FULL fsyncs the WAL on every commit; at the
// batch sizes auditpipe commits, that cost is small.
//
// Transactions begin with BEGIN IMMEDIATE (the driver's _txlock=immediate),
// so the write lock is taken before the tail of the chain is read: two
// appenders, in this process or in others, can never both extend the same
// tail.
func OpenWriter(ctx context.Context, path string, opt WriterOptions) (*Writer, error) {
	if opt.BusyTimeout <= 0 {
		opt.BusyTimeout = DefaultBusyTimeout
	}
	if opt.Canonical == nil {
		opt.Canonical = canon.Append
	}
	if opt.Hash == nil {
		opt.Hash = chain.AppendHexHash
	}
	mode := "rw"
	if opt.Create {
		mode = "rwc"
		fi, err := os.Stat(path)
		if err == nil && fi.IsDir() {
			return nil, dbErr(path, "open", ErrNotAuditDB, errors.New("is a directory"))
		}
		if errors.Is(err, fs.ErrNotExist) {
			// A new database is private: it holds every tenant's audit
			// trail, and SQLite gives the -wal and -shm files the mode of
			// the database file. (SQLite would create it 0644.) If this
			// fails, SQLite's own open reports why.
			if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
				f.Close()
			}
		}
	} else if err := statDB(path, "open"); err != nil {
		return nil, err
	}
	name, err := dsn(path, url.Values{
		"mode":          {mode},
		"_busy_timeout": {millis(opt.BusyTimeout)},
		"_txlock":       {"immediate"},
		"_synchronous":  {"FULL"},
	})
	if err != nil {
		return nil, classify(ctx, path, "open", opt.BusyTimeout, err)
	}
	sdb, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, classify(ctx, path, "open", opt.BusyTimeout, err)
	}
	// One connection: every statement of this process goes through the
	// same lock, and the per-connection pragmas above are set once.
	sdb.SetMaxOpenConns(1)
	w := &Writer{path: path, db: sdb, busy: opt.BusyTimeout, canon: opt.Canonical, hash: opt.Hash}
	if err := w.init(ctx, opt.Create); err != nil {
		sdb.Close()
		return nil, err
	}
	return w, nil
}

// init checks the schema and creates what is missing: everything with
// create, only the two cursor tables without it.
func (w *Writer) init(ctx context.Context, create bool) error {
	fail := func(err error) error { return classify(ctx, w.path, "open", w.busy, err) }
	rows, err := w.db.QueryContext(ctx, `SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')`)
	if err != nil {
		return fail(err)
	}
	have := map[string]bool{}
	others := false
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			rows.Close()
			return fail(err)
		}
		have[name] = true
		if typ == "table" && !strings.HasPrefix(name, "sqlite_") {
			switch name {
			case "audit_records", "audit_export_cursor", "auditpipe_cursor_hash":
			default:
				others = true
			}
		}
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if !have["audit_records"] {
		if !create {
			return dbErr(w.path, "open", ErrNotAuditDB, errors.New("no audit_records table"))
		}
		if others {
			return dbErr(w.path, "open", ErrNotAuditDB, errors.New("the file holds other tables but no audit_records; refusing to add the audit schema to it"))
		}
	}
	if create {
		if err := w.setWAL(ctx); err != nil {
			return fail(err)
		}
	}
	var ddl []string
	if create && !(have["audit_records"] && have["idx_audit_tenant_ts"] && have["idx_audit_tenant_kind"] && have["audit_export_cursor"]) {
		ddl = append(ddl, schema...)
	} else if !have["audit_export_cursor"] {
		ddl = append(ddl, cursorTableSQL)
	}
	if !have["auditpipe_cursor_hash"] {
		ddl = append(ddl, cursorHashTableSQL)
	}
	if len(ddl) > 0 {
		// Only when something is missing: otherwise opening takes no lock.
		err := w.inTx(ctx, func(tx *sql.Tx) error {
			for _, s := range ddl {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	return checkAuditDB(ctx, w.db, w.path, "open", w.busy)
}

// setWAL switches the database to WAL mode unless it is in it already.
// Switching needs the exclusive lock, taken as an upgrade from a shared
// one; when another connection holds the reserved lock and waits for the
// exclusive one (another audit-append creating the same new file), SQLite
// returns SQLITE_BUSY at once instead of calling the busy handler, which
// could deadlock. So it is retried here, within the busy timeout.
func (w *Writer) setWAL(ctx context.Context) error {
	deadline := time.Now().Add(w.busy)
	for {
		var jm string
		err := w.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&jm)
		if err == nil && !strings.EqualFold(jm, "wal") {
			err = w.db.QueryRowContext(ctx, `PRAGMA journal_mode=WAL`).Scan(&jm)
		}
		switch {
		case err == nil && strings.EqualFold(jm, "wal"):
			return nil
		case err == nil:
			return fmt.Errorf("cannot switch to WAL journal mode (got %q)", jm)
		case !isBusy(err) || time.Now().After(deadline):
			return err
		}
		t := time.NewTimer(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// inTx runs fn in a BEGIN IMMEDIATE transaction and commits it.
func (w *Writer) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (w *Writer) Close() error { return w.db.Close() }

// EventError is an event Append refuses. It comes wrapped with exit code 4
// (malformed input).
type EventError struct {
	Index int // 0-based position in the events given to Append
	Err   error
}

func (e *EventError) Error() string { return "event " + strconv.Itoa(e.Index) + ": " + e.Err.Error() }
func (e *EventError) Unwrap() error { return e.Err }

// Append appends events, each a JSON object, as chained rows in one
// transaction, and returns the seqs of the first and last. It is all or
// nothing: on any error, including ctx being done, nothing is appended.
//
// For each event: the stored record_json is its canonical form; kind must be
// a non-empty string ("event has no kind" otherwise); ts must be an integer
// (milliseconds since the epoch) and, when the event has none, "ts": now is
// added to the record, so that the record, like Declaragent's, carries its
// ts; tenant_id is tenantId, else sourceTenantId (non-empty strings), else
// "_system". Bad events are reported, before anything is written, as an
// *EventError. now is called once per Append; nil means time.Now.
func (w *Writer) Append(ctx context.Context, events [][]byte, now func() time.Time) (first, last int64, err error) {
	if len(events) == 0 {
		return 0, 0, nil
	}
	if now == nil {
		now = time.Now
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	nowMS := now().UnixMilli()
	w.evs, w.canonBuf = w.evs[:0], w.canonBuf[:0]
	for i, ev := range events {
		if err := w.prepare(ev, nowMS); err != nil {
			return 0, 0, exitcode.New(exitcode.Input, &EventError{Index: i, Err: err})
		}
	}
	err = w.inTx(ctx, func(tx *sql.Tx) error {
		var prev string
		err := tx.QueryRowContext(ctx, tailSQL).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		st, err := tx.PrepareContext(ctx, insertSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		start := 0
		for i := range w.evs {
			e := &w.evs[i]
			canon := w.canonBuf[start:e.end]
			start = e.end
			w.hashBuf = w.hash(w.hashBuf[:0], prev, canon)
			h := string(w.hashBuf)
			// record_json as a string: a []byte would be stored as a BLOB.
			res, err := st.ExecContext(ctx, e.ts, e.tenant, e.kind, string(canon), prev, h)
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if i == 0 {
				first = id
			}
			last = id
			prev = h
		}
		return nil
	})
	if err != nil {
		return 0, 0, classify(ctx, w.path, "append", w.busy, err)
	}
	return first, last, nil
}

// prepare canonicalises one event into canonBuf and records its columns.
// The fields are read from the canonical form, which has resolved duplicate
// keys, escapes and numbers exactly as JSON.parse does.
func (w *Writer) prepare(raw []byte, nowMS int64) error {
	start := len(w.canonBuf)
	out, err := w.canon(w.canonBuf, raw)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	w.canonBuf = out
	canon := w.canonBuf[start:]
	v, err := w.parser.ParseBytes(canon)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	o, err := v.Object()
	if err != nil {
		return errors.New("event is not a JSON object")
	}
	var e event
	switch k := o.Get("kind"); {
	case k == nil:
		return errors.New("event has no kind")
	case k.Type() != fastjson.TypeString:
		return fmt.Errorf("event kind is %s, not a string", k.Type())
	case len(k.GetStringBytes()) == 0:
		return errors.New("event has an empty kind")
	default:
		e.kind = string(k.GetStringBytes())
	}
	e.tenant = "_system"
	if t := nonEmptyString(o.Get("tenantId")); t != nil {
		e.tenant = string(t)
	} else if t := nonEmptyString(o.Get("sourceTenantId")); t != nil {
		e.tenant = string(t)
	}
	if ts := o.Get("ts"); ts != nil {
		f, err := ts.Float64()
		if ts.Type() != fastjson.TypeNumber || err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return fmt.Errorf("event ts %s is not an integer number of milliseconds", elide.To(ts.String(), 40))
		}
		e.ts = int64(f)
	} else {
		// Add "ts" and canonicalise again: it sorts into place.
		w.scratch = append(w.scratch[:0], `{"ts":`...)
		w.scratch = strconv.AppendInt(w.scratch, nowMS, 10)
		if o.Len() > 0 {
			w.scratch = append(w.scratch, ',')
			w.scratch = append(w.scratch, canon[1:]...)
		} else {
			w.scratch = append(w.scratch, '}')
		}
		out, err := w.canon(w.canonBuf[:start], w.scratch)
		if err != nil {
			return fmt.Errorf("add ts: %w", err)
		}
		w.canonBuf = out
		e.ts = nowMS
	}
	e.end = len(w.canonBuf)
	w.evs = append(w.evs, e)
	return nil
}

func nonEmptyString(v *fastjson.Value) []byte {
	if v == nil || v.Type() != fastjson.TypeString || len(v.GetStringBytes()) == 0 {
		return nil
	}
	return v.GetStringBytes()
}

// CommitCursor moves exporter's cursor to lastSeq, recording lastHash (the
// record_hash at lastSeq) beside it, and returns the cursor's value after
// the commit. Both tables are upserted in one durable transaction, each
// monotonically: a lastSeq at or below the stored one changes nothing, and
// the returned value is then the higher stored one. updated_at is now in
// milliseconds since the epoch.
func (w *Writer) CommitCursor(ctx context.Context, exporter string, lastSeq int64, lastHash string, now time.Time) (committed int64, err error) {
	if exporter == "" {
		return 0, errors.New("commit cursor: empty exporter name")
	}
	if lastSeq < 0 {
		return 0, fmt.Errorf("commit cursor: negative seq %d", lastSeq)
	}
	if lastHash != "" && !chain.IsHexHashString(lastHash) {
		return 0, fmt.Errorf("commit cursor: last hash %q is not 64 lowercase hex digits", elide.To(lastHash, 40))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ms := now.UnixMilli()
	var mismatch error
	err = w.inTx(ctx, func(tx *sql.Tx) error {
		if lastHash != "" {
			// The row the cursor would point at must be the record that was
			// shipped, or the cursor would claim what this database does not
			// hold (see AckMismatchError).
			var have string
			err := tx.QueryRowContext(ctx, `SELECT record_hash FROM audit_records WHERE seq = ?`, lastSeq).Scan(&have)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				var head int64
				if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&head); err != nil {
					return err
				}
				mismatch = &AckMismatchError{Path: w.path, Exporter: exporter, Seq: lastSeq, Shipped: lastHash, Head: head}
				return errRollback
			case err != nil:
				return err
			case have != lastHash:
				mismatch = &AckMismatchError{Path: w.path, Exporter: exporter, Seq: lastSeq, Shipped: lastHash, Have: have}
				return errRollback
			}
		}
		if _, err := tx.ExecContext(ctx, upsertCursorSQL, exporter, lastSeq, ms); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, upsertHashSQL, exporter, lastSeq, lastHash, ms); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT last_seq FROM audit_export_cursor WHERE exporter_name = ?`, exporter).Scan(&committed)
	})
	if mismatch != nil {
		return 0, exitcode.New(exitcode.Verify, mismatch)
	}
	if err != nil {
		return 0, classify(ctx, w.path, "commit cursor", w.busy, err)
	}
	return committed, nil
}

// errRollback makes inTx roll back without an error of its own.
var errRollback = errors.New("rolled back")

// AckMismatchError is an ack that does not match the database it would be
// committed to: the row at Seq has another hash (Have), or there is no row
// at Seq (Head is then the last seq there is). Either the acks come from a
// pipeline that read another database, or this database was replaced or
// rewritten after its records were shipped; moving the cursor would claim
// that records were shipped that were not, so it is not moved. CommitCursor
// returns it inside an *exitcode.Error with code exitcode.Verify (3).
type AckMismatchError struct {
	Path     string
	Exporter string
	Seq      int64
	Shipped  string // the recordHash the ack says was shipped
	Have     string // the record_hash at Seq in this database ("" if no row)
	Head     int64  // the last seq in this database, when there is no row at Seq
}

func (e *AckMismatchError) Error() string {
	what := fmt.Sprintf("has record_hash %q there", e.Have)
	if e.Have == "" {
		what = fmt.Sprintf("has no seq %d (its last is %d)", e.Seq, e.Head)
	}
	return fmt.Sprintf("commit cursor %s: the ack for %s says seq %d with recordHash %s was shipped, but %s %s; "+
		"the cursor is not moved. Check that audit-ack and audit-read name the same database; "+
		"if they do, this database was replaced or rewritten after shipping: compare it with what the SIEM holds (audit-fetch | audit-verify)",
		e.Path, e.Exporter, e.Seq, e.Shipped, e.Path, what)
}

// Cursor reads exporter's cursor as DB.Cursor does.
func (w *Writer) Cursor(ctx context.Context, exporter string) (Cursor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return readCursor(ctx, w.db, w.path, w.busy, exporter)
}
