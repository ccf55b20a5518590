package auditdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// The kinds of database failure. Test for them with errors.Is; the error
// itself is a *DBError (find it with errors.As) inside an *exitcode.Error
// with code exitcode.Database, so a command's Main maps it to exit code 5
// without the caller doing anything.
var (
	ErrNotFound   = errors.New("audit database not found")
	ErrNotAuditDB = errors.New("not an audit database")
	ErrCorrupt    = errors.New("audit database is corrupt")
	ErrLocked     = errors.New("audit database is locked")
	ErrCantOpen   = errors.New("cannot open audit database")
)

// DBError is a database failure of one of the kinds above, with the path
// and the operation, and a message that says what to do about it.
type DBError struct {
	Path string // the database file as given
	Op   string // "open", "scan", "follow", "append", "commit cursor", ...
	Kind error  // ErrNotFound, ErrNotAuditDB, ErrCorrupt, ErrLocked or ErrCantOpen
	Err  error  // the underlying cause; may be nil
}

func (e *DBError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteByte(' ')
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	h := hint(e.Kind)
	if e.Kind == ErrCantOpen {
		if d := readOnlyDir(e.Path); d != "" {
			h = d
		}
	}
	if h != "" {
		b.WriteString(" (")
		b.WriteString(h)
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap makes both the kind and the cause visible to errors.Is and errors.As.
func (e *DBError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func hint(kind error) string {
	switch kind {
	case ErrNotFound:
		return "check the database path; auditpipe never creates the daemon's database when reading"
	case ErrNotAuditDB:
		return "point at the SQLite file written by Declaragent's audit sink; it has an audit_records table"
	case ErrCorrupt:
		return "run: sqlite3 FILE 'PRAGMA integrity_check', and restore the file from a backup; " +
			"but if FILE was replaced (a copy put in its place) with a FILE-wal of the old database left beside it, the file may be healthy: " +
			"SQLite applies any -wal at the path to the file at the path, so move FILE-wal and FILE-shm away once no process has the old database open"
	case ErrLocked:
		return "another process held the lock too long: a long write transaction, a writer in rollback-journal mode, or one with locking_mode=EXCLUSIVE; retry, or raise the busy timeout"
	case ErrCantOpen:
		return "check that the file and its directory are readable (and writable for the -wal and -shm files)"
	}
	return ""
}

// readOnlyDir returns the hint for a database whose directory this process
// cannot write (a read-only mount, systemd's ReadOnlyPaths=, permissions),
// or "" if the directory is writable. A WAL database's reader creates FILE-shm
// (and opens FILE-wal) beside it while no writer has them open, so such a
// directory fails with SQLite's bare "unable to open database file".
func readOnlyDir(path string) string {
	dir := filepath.Dir(path)
	err := syscall.Access(dir, 2) // W_OK
	if err == nil {
		return ""
	}
	return fmt.Sprintf("the directory %s is not writable by this process (%v): a WAL database's reader must create %s-shm and %s-wal there while the writer is stopped; "+
		"give the reader write access to the directory (under systemd ReadWritePaths=%s, not ReadOnlyPaths=); it still opens the database read-only",
		dir, err, filepath.Base(path), filepath.Base(path), dir)
}

// dbErr returns a *DBError of the given kind wrapped with exit code 5.
func dbErr(path, op string, kind, cause error) error {
	return exitcode.New(exitcode.Database, &DBError{Path: path, Op: op, Kind: kind, Err: cause})
}

// classify turns an error from the driver into one this package documents.
// Context errors are returned as they are (a cancelled query surfaces as
// SQLITE_INTERRUPT, reported here as ctx.Err()); SQLite's BUSY, CORRUPT,
// NOTADB and CANTOPEN become a *DBError; anything else is wrapped as
// "op path: err" and keeps the default exit code (runtime failure).
func classify(ctx context.Context, path, op string, busy time.Duration, err error) error {
	if err == nil {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ee *exitcode.Error
	if errors.As(err, &ee) {
		return err // already classified
	}
	if code, ok := sqliteCode(err); ok {
		switch code & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			if code == sqlite3.SQLITE_BUSY_SNAPSHOT {
				// Not a wait that timed out: a read transaction tried to
				// write after another connection had committed.
				return dbErr(path, op, ErrLocked, fmt.Errorf("another connection wrote first: %w", err))
			}
			return dbErr(path, op, ErrLocked, fmt.Errorf("still locked after the busy timeout of %v: %w", busy, err))
		case sqlite3.SQLITE_CORRUPT:
			return dbErr(path, op, ErrCorrupt, err)
		case sqlite3.SQLITE_NOTADB:
			return dbErr(path, op, ErrNotAuditDB, err)
		case sqlite3.SQLITE_CANTOPEN:
			return dbErr(path, op, ErrCantOpen, err)
		}
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

// sqliteCode returns the SQLite result code of an error from the driver
// (*sqlite.Error) or from a capiConn (*capiError).
func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	var ce *capiError
	if errors.As(err, &ce) {
		return ce.Code(), true
	}
	return 0, false
}

// statDB checks that path names an existing regular file.
func statDB(path, op string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return dbErr(path, op, ErrNotFound, nil)
	case err != nil:
		return dbErr(path, op, ErrCantOpen, err)
	case fi.IsDir():
		return dbErr(path, op, ErrNotAuditDB, errors.New("is a directory"))
	}
	return nil
}

// dsn builds a SQLite URI filename for path with the given SQLite URI
// parameters (mode) and driver parameters (underscore keys). The "file:"
// form is required: with a plain name the driver drops SQLite's own
// parameters, so mode=ro would be ignored.
func dsn(path string, params url.Values) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("file:")
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(abs); i++ {
		c := abs[i]
		if c == '%' || c == '?' || c == '#' || c <= 0x20 || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('?')
	b.WriteString(params.Encode())
	return b.String(), nil
}

func millis(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	ms := d.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10)
}
