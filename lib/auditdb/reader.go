package auditdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Defaults of ReaderOptions and Follow.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultChunkRows   = 10000
	DefaultChunkBytes  = 8 << 20
	DefaultPoll        = 100 * time.Millisecond
)

// ReaderOptions configures OpenReader. The zero value gives the defaults.
type ReaderOptions struct {
	// BusyTimeout is how long a statement waits for a lock another process
	// holds before failing with ErrLocked. Default DefaultBusyTimeout.
	BusyTimeout time.Duration
	// ChunkRows caps the rows one statement examines (default
	// DefaultChunkRows), ChunkBytes the record bytes it buffers (default
	// DefaultChunkBytes; a single larger record is still read).
	ChunkRows  int
	ChunkBytes int
	// MmapSize, if positive, lets SQLite read up to that many bytes of the
	// file through mmap (PRAGMA mmap_size) instead of read(2). That is
	// about 15% faster on long scans, but an I/O error on a mapped page
	// (a failing disk, a network file system) then kills the process with
	// SIGBUS instead of returning an error. Off by default.
	MmapSize int64
	// Log, if not nil, is told what Follow does about a replaced database
	// (one line, no prefix). nil: nothing is said.
	Log func(msg string)
}

// DB is a read-only handle on an audit database. Its methods may be called
// from several goroutines.
type DB struct {
	path       string
	db         *sql.DB
	busy       time.Duration
	mmapSize   int64
	chunkRows  int
	chunkBytes int

	log   func(string)
	noWAL bool // the file is read without its -wal, which is another database's

	mu     sync.Mutex
	idle   *capiConn // a scanner connection kept for the next scanner; nil if none
	closed bool
}

// OpenReader opens the audit database at path read-only (SQLite mode=ro and
// PRAGMA query_only=1) and checks that it is an audit database. It never
// creates the file. The errors it returns are described in the package
// documentation; a *DBError is wrapped with exit code 5.
func OpenReader(ctx context.Context, path string, opt ReaderOptions) (*DB, error) {
	if opt.BusyTimeout <= 0 {
		opt.BusyTimeout = DefaultBusyTimeout
	}
	if opt.ChunkRows <= 0 {
		opt.ChunkRows = DefaultChunkRows
	}
	if opt.ChunkBytes <= 0 {
		opt.ChunkBytes = DefaultChunkBytes
	}
	if err := statDB(path, "open"); err != nil {
		return nil, err
	}
	params := url.Values{
		"mode":          {"ro"},
		"_busy_timeout": {millis(opt.BusyTimeout)},
		"_query_only":   {"1"},
	}
	if opt.MmapSize > 0 {
		params.Set("_pragma", "mmap_size("+strconv.FormatInt(opt.MmapSize, 10)+")")
	}
	name, err := dsn(path, params)
	if err != nil {
		return nil, classify(ctx, path, "open", opt.BusyTimeout, err)
	}
	sdb, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, classify(ctx, path, "open", opt.BusyTimeout, err)
	}
	sdb.SetMaxIdleConns(2)
	db := &DB{path: path, db: sdb, busy: opt.BusyTimeout, mmapSize: opt.MmapSize,
		chunkRows: opt.ChunkRows, chunkBytes: opt.ChunkBytes, log: opt.Log}
	err = checkAuditDB(ctx, sdb, path, "open", opt.BusyTimeout)
	if err == nil {
		_, err = db.HeadSeq(ctx) // reads the last page of the table: a -wal that does not fit shows here
	}
	if err == nil || isCorrupt(err) {
		// A healthy file with a -wal left over from a database it replaced
		// reads as malformed, or as that database: read it without the -wal.
		if alone := db.openAlone(ctx, err != nil); alone != nil {
			sdb.Close()
			sdb, db.db, db.noWAL, err = alone, alone, true, nil
			db.logf("%s reads as malformed (or as another database) with the %s-wal beside it, but the file alone is healthy (quick_check ok): the -wal belongs to another database "+
				"(one this file replaced). Reading the file without it; rows committed through that -wal are not seen. "+
				"Move %s-wal and %s-shm away once no process has the old database open (a writer opening the file would apply that -wal too)", path, path, path, path)
		}
	}
	if err != nil {
		sdb.Close()
		return nil, err
	}
	// The first scanner's connection is opened now, on the file just
	// checked (opening reads nothing yet).
	if db.idle, err = openCapiMode(path, opt.BusyTimeout, opt.MmapSize, db.noWAL); err != nil {
		sdb.Close()
		return nil, classify(ctx, path, "open", opt.BusyTimeout, err)
	}
	return db, nil
}

// checkAuditDB reports ErrNotAuditDB unless audit_records exists with the
// columns this package reads.
func checkAuditDB(ctx context.Context, q queryer, path, op string, busy time.Duration) error {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='audit_records'`).Scan(&n)
	if err != nil {
		return classify(ctx, path, op, busy, err)
	}
	if n == 0 {
		return dbErr(path, op, ErrNotAuditDB, errors.New("no audit_records table"))
	}
	err = q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT `+rowColumns+` FROM audit_records LIMIT 0)`).Scan(&n)
	if err != nil {
		c := classify(ctx, path, op, busy, err)
		if ctx.Err() != nil || isClassified(c) {
			return c
		}
		return dbErr(path, op, ErrNotAuditDB, err) // e.g. "no such column: record_hash"
	}
	return nil
}

func isClassified(err error) bool {
	var e *DBError
	return errors.As(err, &e)
}

const rowColumns = `seq, ts, tenant_id, kind, record_json, prev_hash, record_hash`

// Close closes the database. A Scan or Follow still running closes its
// own connection when it ends.
func (db *DB) Close() error {
	db.mu.Lock()
	c := db.idle
	db.idle, db.closed = nil, true
	db.mu.Unlock()
	if c != nil {
		c.close()
	}
	return db.db.Close()
}

// errDBClosed is what Scan and Follow return after Close, as database/sql
// does for the other methods.
var errDBClosed = errors.New("sql: database is closed")

// getConn returns the idle scanner connection, or a new one.
func (db *DB) getConn() (*capiConn, error) {
	db.mu.Lock()
	c, closed := db.idle, db.closed
	db.idle = nil
	db.mu.Unlock()
	if closed {
		return nil, errDBClosed
	}
	if c != nil {
		return c, nil
	}
	return openCapiMode(db.path, db.busy, db.mmapSize, db.noWAL)
}

// openAlone opens the file at the path without its -wal (immutable=1),
// if it has a -wal that is not its own, and returns it if it is a healthy
// audit database (quick_check ok); nil otherwise. The -wal is not its own
// when the file read through it is malformed (corrupt), or when the file
// alone has more rows than the file read through it, or another hash at the
// last row it has: through a -wal of its own, a file only gains rows. Both
// looks are taken twice, apart: a file is not read consistently without its
// -wal while a checkpoint writes it, so one look is no evidence.
func (db *DB) openAlone(ctx context.Context, corrupt bool) *sql.DB {
	if _, err := os.Stat(db.path + "-wal"); err != nil {
		return nil
	}
	name, err := dsn(db.path, url.Values{"mode": {"ro"}, "immutable": {"1"}, "_query_only": {"1"}})
	if err != nil {
		return nil
	}
	alone, err := sql.Open("sqlite", name)
	if err != nil {
		return nil
	}
	alone.SetMaxIdleConns(2)
	foreign := func() bool {
		if corrupt {
			return true
		}
		var hw, ha int64
		if db.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&hw) != nil ||
			alone.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&ha) != nil {
			return false
		}
		if ha > hw {
			return true
		}
		if ha == 0 {
			return false
		}
		var h1, h2 string
		return db.db.QueryRowContext(ctx, `SELECT record_hash FROM audit_records WHERE seq = ?`, ha).Scan(&h1) == nil &&
			alone.QueryRowContext(ctx, `SELECT record_hash FROM audit_records WHERE seq = ?`, ha).Scan(&h2) == nil && h1 != h2
	}
	var ok string
	if foreign() && sleepCtx(ctx, 100*time.Millisecond) && foreign() &&
		checkAuditDB(ctx, alone, db.path, "open", db.busy) == nil &&
		alone.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&ok) == nil && ok == "ok" {
		return alone
	}
	alone.Close()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// putConn keeps c, whose statements are finalized, for the next scanner,
// unless one is kept already or db is closed.
func (db *DB) putConn(c *capiConn) {
	c.ctx = nil
	db.mu.Lock()
	if db.idle == nil && !db.closed {
		db.idle, c = c, nil
	}
	db.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// ForeignWAL reports whether OpenReader found the -wal beside the file to
// be another database's, and so reads the file without it. A writer must
// not open such a file: SQLite would apply that -wal to it for good.
func (db *DB) ForeignWAL() bool { return db.noWAL }

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Filter selects rows. The zero Filter selects every row.
type Filter struct {
	FromSeq, ToSeq int64     // inclusive bounds on seq; 0 means unbounded
	Since, Until   time.Time // Since <= ts < Until (ts in ms); zero means unbounded
	Tenants        []string  // tenant_id is one of these; empty means any
	Kinds          []string  // kind is one of these; empty means any
}

func (f *Filter) validate() error {
	if f.FromSeq < 0 || f.ToSeq < 0 {
		return errors.New("filter: negative seq bound")
	}
	return nil
}

// HeadSeq returns the highest seq in audit_records, 0 if it is empty.
func (db *DB) HeadSeq(ctx context.Context) (int64, error) {
	var head int64
	err := db.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit_records`).Scan(&head)
	return head, classify(ctx, db.path, "read head", db.busy, err)
}

// RecordHashAt returns the record_hash of the row with the given seq, and
// whether such a row exists.
func (db *DB) RecordHashAt(ctx context.Context, seq int64) (string, bool, error) {
	var h string
	err := db.db.QueryRowContext(ctx, `SELECT record_hash FROM audit_records WHERE seq = ?`, seq).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify(ctx, db.path, "read record hash", db.busy, err)
	}
	return h, true, nil
}

// Cursor is an exporter's committed position.
type Cursor struct {
	Exporter  string
	LastSeq   int64
	LastHash  string    // record_hash at LastSeq as audit-ack committed it; "" if unknown
	UpdatedAt time.Time // from audit_export_cursor.updated_at, read as ms since the epoch
	Found     bool      // false: no cursor row (or no cursor table) for this exporter
}

// Cursor reads the committed cursor of exporter. LastHash is set only when
// auditpipe_cursor_hash holds a row for the same exporter at the same
// last_seq: Declaragent's own tools move audit_export_cursor without
// touching our table, and then the hash we kept is for another seq. A
// database without auditpipe_cursor_hash (only Declaragent ever wrote to it)
// gives LastHash ""; one without audit_export_cursor gives Found false.
func (db *DB) Cursor(ctx context.Context, exporter string) (Cursor, error) {
	return readCursor(ctx, db.db, db.path, db.busy, exporter)
}

type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func readCursor(ctx context.Context, q queryer, path string, busy time.Duration, exporter string) (Cursor, error) {
	c := Cursor{Exporter: exporter}
	fail := func(err error) (Cursor, error) { return Cursor{}, classify(ctx, path, "read cursor", busy, err) }
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type='table' AND name IN ('audit_export_cursor', 'auditpipe_cursor_hash')`)
	if err != nil {
		return fail(err)
	}
	var hasCursor, hasHash bool
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fail(err)
		}
		hasCursor = hasCursor || name == "audit_export_cursor"
		hasHash = hasHash || name == "auditpipe_cursor_hash"
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if !hasCursor {
		return c, nil
	}
	var updated int64
	var hseq sql.NullInt64
	var hhash sql.NullString
	if hasHash {
		// One statement, so both tables are read in one snapshot.
		err = q.QueryRowContext(ctx, `SELECT c.last_seq, c.updated_at, h.last_seq, h.last_hash
			FROM audit_export_cursor c LEFT JOIN auditpipe_cursor_hash h ON h.exporter_name = c.exporter_name
			WHERE c.exporter_name = ?`, exporter).Scan(&c.LastSeq, &updated, &hseq, &hhash)
	} else {
		err = q.QueryRowContext(ctx, `SELECT last_seq, updated_at FROM audit_export_cursor WHERE exporter_name = ?`,
			exporter).Scan(&c.LastSeq, &updated)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return fail(err)
	}
	c.Found = true
	c.UpdatedAt = time.UnixMilli(updated)
	if hseq.Valid && hhash.Valid && hseq.Int64 == c.LastSeq {
		c.LastHash = hhash.String
	}
	return c, nil
}

// Scan calls fn for each row that f selects, in seq order, up to the head of
// the log as it was when Scan started. It returns the seq of the last row
// for which fn returned nil (0 if none).
//
// The Row and its RecordJSON are valid only until fn returns. Rows are read
// in chunks: each chunk is read into a buffer by one statement, which is
// finished before fn sees the first of its rows, so a slow fn never holds a
// read transaction open. An error from fn stops the scan and is returned as
// it is; so is ctx's error, checked after every row.
func (db *DB) Scan(ctx context.Context, f Filter, fn func(*Row) error) (lastSeq int64, err error) {
	s, err := db.newScanner(ctx, f, "scan")
	if err != nil {
		return 0, err
	}
	defer s.close()
	end, err := s.head(ctx)
	if err != nil {
		return 0, err
	}
	if f.ToSeq > 0 && f.ToSeq < end {
		end = f.ToSeq
	}
	for s.pos < end {
		more, err := s.chunk(ctx, end, fn)
		if err != nil {
			return s.last, err
		}
		if !more {
			break
		}
	}
	return s.last, nil
}

// Follow is Scan that does not stop at the head: after the rows that exist,
// it waits for new ones and delivers them as they are committed, until ctx
// is done or, if f.ToSeq is set, the row at ToSeq has been passed. While it
// is caught up it checks every poll (default DefaultPoll when poll <= 0)
// whether anything was committed (PRAGMA data_version, which costs no table
// read) and queries only then. While fn blocks, nothing is polled.
//
// Follow returns nil when ctx is done: the row being handled by fn is
// finished first, and no further row is delivered. Otherwise it returns the
// first error from the database or from fn.
func (db *DB) Follow(ctx context.Context, f Filter, poll time.Duration, fn func(*Row) error) error {
	return db.FollowIdle(ctx, f, poll, fn, nil)
}

// FollowIdle is Follow with idle, if not nil, called each time every row
// committed so far has been delivered and Follow is about to wait for more:
// the moment to flush buffered output. It is called once per wait, not once
// per poll. An error from idle ends FollowIdle, as one from fn does.
func (db *DB) FollowIdle(ctx context.Context, f Filter, poll time.Duration, fn func(*Row) error, idle func() error) error {
	if poll <= 0 {
		poll = DefaultPoll
	}
	s, err := db.newScanner(ctx, f, "follow")
	if err != nil {
		return stopped(ctx, err)
	}
	defer func() { s.close() }()
	end := int64(math.MaxInt64)
	if f.ToSeq > 0 {
		end = f.ToSeq
	}
	version, err := s.dataVersion(ctx)
	if err != nil {
		return stopped(ctx, err)
	}
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		// Drain everything committed so far. The data version was read
		// before, so a commit that lands during the drain is seen below.
		for {
			if s.pos >= end {
				return nil
			}
			more, err := s.chunk(ctx, end, fn)
			if err != nil {
				return stopped(ctx, err)
			}
			if !more {
				break
			}
		}
		if idle != nil {
			if err := idle(); err != nil {
				return stopped(ctx, err)
			}
		}
		for {
			timer.Reset(poll)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
			// The file at the path may be another one now (the database
			// removed and recreated, or a copy renamed over it).
			ns, err := db.checkReplaced(ctx, s, f)
			if err != nil {
				return stopped(ctx, err)
			}
			if ns != nil {
				s.close()
				s = ns
				if version, err = s.dataVersion(ctx); err != nil {
					return stopped(ctx, err)
				}
				break
			}
			v, err := s.dataVersion(ctx)
			if err != nil {
				return stopped(ctx, err)
			}
			if v != version {
				version = v
				break
			}
		}
	}
}

// stopped turns an error caused by ctx being done into nil (a clean stop).
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// scanner reads chunks of rows on a connection of its own (PRAGMA
// data_version is per connection) made through SQLite's C API (capiConn),
// with statements prepared once. The connection goes back to the DB when
// the scanner is closed, for the next one.
type scanner struct {
	db      *DB
	op      string
	c       *capiConn
	boundSt uintptr // the seq bounding the next chunk
	rowsSt  uintptr // the rows of a chunk
	verSt   uintptr // PRAGMA data_version
	headSt  uintptr // the head of the log
	pos     int64   // every row with seq <= pos has been examined
	last    int64   // seq of the last row fn accepted
	buf     []Row
	offs    []int  // end offset of each buffered row's record in arena
	arena   []byte // the records of the chunk; reused
	// strs holds the chunk's hashes, and the tenants and kinds not in
	// names, which the Row strings point into. It is only ever appended
	// to, and a new one is made for each chunk, so the bytes a string
	// points at are never written again (append may move on to a new
	// array, but leaves the old one as it was).
	strs  []byte
	names map[string]string // tenant and kind values seen, up to maxNames

	// Follow's watch on the file at the path (replaced.go).
	id         fileID    // the file this scanner's connection reads
	noWAL      bool      // it reads the file without its -wal (immutable=1)
	stale      bool      // close the connection rather than keep it for the next scanner
	missing    time.Time // since when the path names no file (zero: it does)
	missingLog time.Time // when that was last said
	unreadyLog time.Time // when "the new file cannot be read yet" was last said
	watched    time.Time // the last attempt to read the file the normal way again
}

// maxNames caps the tenant and kind values a scanner keeps one string of,
// maxName the length of such a value.
const maxNames, maxName = 4096, 256

func (db *DB) newScanner(ctx context.Context, f Filter, op string) (*scanner, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	id, _ := statID(db.path)
	c, err := db.getConn()
	if err != nil {
		return nil, classify(ctx, db.path, op, db.busy, err)
	}
	s, err := db.newScannerOn(ctx, f, op, c)
	if err != nil {
		return nil, err
	}
	s.id, s.noWAL = id, db.noWAL
	return s, nil
}

// newScannerOn makes a scanner on the connection c (closed if it fails).
func (db *DB) newScannerOn(ctx context.Context, f Filter, op string, c *capiConn) (*scanner, error) {
	if err := f.validate(); err != nil {
		c.close()
		return nil, err
	}
	s := &scanner{db: db, op: op, pos: math.MinInt64, names: map[string]string{}, c: c}
	if f.FromSeq > 0 {
		s.pos = f.FromSeq - 1
	}
	var q strings.Builder
	var texts []string // the filter's text parameters, from ?3 on
	var ints []int64   // then its integer parameters
	// NOT INDEXED keeps SQLite on the rowid range: given a tenant filter
	// it would otherwise walk idx_audit_tenant_ts over all of the tenant's
	// rows and sort them, for every chunk.
	q.WriteString(`SELECT ` + rowColumns + ` FROM audit_records NOT INDEXED WHERE seq > ?1 AND seq <= ?2`)
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		q.WriteString(` AND ` + col + ` IN (`)
		for i, v := range vals {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
			texts = append(texts, v)
		}
		q.WriteByte(')')
	}
	in("tenant_id", f.Tenants)
	in("kind", f.Kinds)
	if !f.Since.IsZero() {
		q.WriteString(` AND ts >= ?`)
		ints = append(ints, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		q.WriteString(` AND ts < ?`)
		ints = append(ints, f.Until.UnixMilli())
	}
	q.WriteString(` ORDER BY seq`)

	fail := func(err error) (*scanner, error) {
		s.close()
		return nil, classify(ctx, db.path, op, db.busy, err)
	}
	var err error
	s.c.ctx = ctx // the first statement reads the schema, and may wait for a lock
	if s.rowsSt, err = s.c.prepare(q.String()); err != nil {
		return fail(err)
	}
	// The filter's parameters are bound once: a reset keeps them.
	for i, v := range texts {
		if err := s.c.bindText(s.rowsSt, 3+i, v); err != nil {
			return fail(err)
		}
	}
	for i, v := range ints {
		if err := s.c.bindInt64(s.rowsSt, 3+len(texts)+i, v); err != nil {
			return fail(err)
		}
	}
	// The first seq after pos and the head, both rowid seeks: a chunk
	// covers the seqs [first, min(first+chunkRows-1, head)], so it examines
	// at most chunkRows rows whatever the filter, and a gap in the seqs is
	// jumped at once. (Finding the chunkRows-th row with OFFSET instead walks
	// every leaf page of the chunk twice: measured at half the scan speed.)
	if s.boundSt, err = s.c.prepare(`SELECT coalesce((SELECT min(seq) FROM audit_records WHERE seq > ?), 0), coalesce(max(seq), 0) FROM audit_records`); err != nil {
		return fail(err)
	}
	if s.verSt, err = s.c.prepare(`PRAGMA data_version`); err != nil {
		return fail(err)
	}
	if s.headSt, err = s.c.prepare(`SELECT coalesce(max(seq), 0) FROM audit_records`); err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *scanner) close() {
	if s.c == nil {
		return
	}
	for _, st := range []uintptr{s.rowsSt, s.boundSt, s.verSt, s.headSt} {
		s.c.finalize(st)
	}
	if s.stale {
		s.c.close()
	} else {
		s.db.putConn(s.c)
	}
	s.c = nil
}

// discard closes s and its connection.
func (s *scanner) discard() {
	s.stale = true
	s.close()
}

func (s *scanner) fail(ctx context.Context, err error) error {
	return classify(ctx, s.db.path, s.op, s.db.busy, err)
}

func (s *scanner) head(ctx context.Context) (int64, error) {
	var head int64
	err := s.c.ints(ctx, s.headSt, &head)
	return head, s.fail(ctx, err)
}

func (s *scanner) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.c.ints(ctx, s.verSt, &v)
	return v, s.fail(ctx, err)
}

// chunk reads the rows after pos up to at most end, one chunk's worth, then
// delivers them to fn. It reports whether it advanced: false means there is
// nothing after pos (up to end) yet.
func (s *scanner) chunk(ctx context.Context, end int64, fn func(*Row) error) (bool, error) {
	var first, hi int64
	if err := s.c.bindInt64(s.boundSt, 1, s.pos); err != nil {
		return false, s.fail(ctx, err)
	}
	if err := s.c.ints(ctx, s.boundSt, &first, &hi); err != nil {
		return false, s.fail(ctx, err)
	}
	if first == 0 {
		return false, nil // nothing after pos yet
	}
	if lim := first + int64(s.db.chunkRows) - 1; hi > lim {
		hi = lim
	}
	if hi > end {
		hi = end
	}
	if hi <= s.pos {
		return false, nil
	}
	full, err := s.read(ctx, hi)
	if err != nil {
		return false, s.fail(ctx, err)
	}
	// The statement is reset: no read transaction is open from here on.
	if full {
		s.pos = s.buf[len(s.buf)-1].Seq
	} else {
		s.pos = hi
	}
	start := 0
	for i := range s.buf {
		s.buf[i].RecordJSON = s.arena[start:s.offs[i]:s.offs[i]]
		start = s.offs[i]
	}
	done := ctx.Done()
	for i := range s.buf {
		if err := fn(&s.buf[i]); err != nil {
			return false, err
		}
		s.last = s.buf[i].Seq
		if done != nil {
			select {
			case <-done:
				return false, ctx.Err()
			default:
			}
		}
	}
	return true, nil
}

// read runs the chunk statement for the seqs (pos, hi] into buf, offs,
// arena and a new strs, and resets it. It stops early, reporting full,
// once the chunk holds chunkRows rows or chunkBytes of records.
func (s *scanner) read(ctx context.Context, hi int64) (full bool, err error) {
	c, st := s.c, s.rowsSt
	c.ctx = ctx
	if err := c.bindInt64(st, 1, s.pos); err != nil {
		return false, err
	}
	if err := c.bindInt64(st, 2, hi); err != nil {
		return false, err
	}
	s.buf, s.offs, s.arena = s.buf[:0], s.offs[:0], s.arena[:0]
	s.strs = make([]byte, 0, max(len(s.strs)+len(s.strs)/8, 4096)) // the last chunk's size, and some
	done := ctx.Done()
	tls := c.tls
	for {
		rc := sqlite3.Xsqlite3_step(tls, st)
		if rc != sqlite3.SQLITE_ROW {
			if rc != sqlite3.SQLITE_DONE {
				err = c.error(rc)
			}
			break
		}
		if err = s.row(st); err != nil {
			break
		}
		if len(s.buf) >= s.db.chunkRows || len(s.arena) >= s.db.chunkBytes {
			full = true
			break
		}
		if done != nil {
			select {
			case <-done:
				err = ctx.Err()
			default:
			}
			if err != nil {
				break
			}
		}
	}
	sqlite3.Xsqlite3_reset(tls, st)
	return full, err
}

// row appends the current row of st to the chunk.
func (s *scanner) row(st uintptr) error {
	c := s.c
	var r Row
	r.Seq = sqlite3.Xsqlite3_column_int64(c.tls, st, 0)
	if t := sqlite3.Xsqlite3_column_type(c.tls, st, 1); t != sqlite3.SQLITE_INTEGER {
		return fmt.Errorf("seq %d: ts is not an integer (SQLite type %d)", r.Seq, t)
	}
	r.TS = sqlite3.Xsqlite3_column_int64(c.tls, st, 1)
	var err error
	if r.TenantID, err = s.name(st, 2, "tenant_id", r.Seq); err != nil {
		return err
	}
	if r.Kind, err = s.name(st, 3, "kind", r.Seq); err != nil {
		return err
	}
	rec, err := s.column(st, 4, "record_json", r.Seq)
	if err != nil {
		return err
	}
	s.arena = append(s.arena, rec...)
	prev, err := s.column(st, 5, "prev_hash", r.Seq)
	if err != nil {
		return err
	}
	// prev_hash is the record_hash of the row before: share its string.
	if n := len(s.buf); n > 0 && s.buf[n-1].RecordHash == string(prev) {
		r.PrevHash = s.buf[n-1].RecordHash
	} else {
		r.PrevHash = s.str(prev)
	}
	hash, err := s.column(st, 6, "record_hash", r.Seq)
	if err != nil {
		return err
	}
	r.RecordHash = s.str(hash)
	s.offs = append(s.offs, len(s.arena))
	s.buf = append(s.buf, r)
	return nil
}

// column returns column i of the current row of st, in SQLite's memory
// (valid until the next step), and an error if it is NULL.
func (s *scanner) column(st uintptr, i int32, name string, seq int64) ([]byte, error) {
	b, null := s.c.text(st, i)
	if null {
		return nil, fmt.Errorf("seq %d: %s is NULL", seq, name)
	}
	if b == nil && sqlite3.Xsqlite3_errcode(s.c.tls, s.c.db) == sqlite3.SQLITE_NOMEM {
		return nil, s.c.error(sqlite3.SQLITE_NOMEM)
	}
	return b, nil
}

// name returns column i, a tenant or a kind, as a string, one string for
// each distinct value (up to maxNames of them, of up to maxName bytes).
func (s *scanner) name(st uintptr, i int32, col string, seq int64) (string, error) {
	b, err := s.column(st, i, col, seq)
	if err != nil {
		return "", err
	}
	if v, ok := s.names[string(b)]; ok {
		return v, nil
	}
	if len(s.names) >= maxNames || len(b) > maxName {
		return s.str(b), nil
	}
	v := string(b)
	s.names[v] = v
	return v, nil
}

// str copies b into strs and returns it as a string there.
func (s *scanner) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	off := len(s.strs)
	s.strs = append(s.strs, b...)
	return unsafe.String(&s.strs[off], len(b))
}
