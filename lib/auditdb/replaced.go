package auditdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// ReplacedError is the database replaced under Follow by a file that does
// not continue the chain read so far: the new file at Path has another
// record_hash at Seq (Now), or no row at Seq (Head is its last seq), or
// cannot be read at all (Cause). Records may be missing or rewritten, so
// Follow stops. It comes inside an *exitcode.Error with code 3 (Verify):
// it is evidence, for a person to look at.
type ReplacedError struct {
	Path  string
	Seq   int64  // the last row read from the old file
	Hash  string // its record_hash there
	Now   string // the record_hash at Seq in the new file; "" if none
	Head  int64  // the new file's last seq, when it has no row at Seq
	Cause error  // the new file could not be read
}

func (e *ReplacedError) Error() string {
	var now string
	switch {
	case e.Cause != nil:
		now = fmt.Sprintf("the new one cannot be read: %v", e.Cause)
	case e.Now == "":
		now = fmt.Sprintf("the new one has no seq %d (its last is %d)", e.Seq, e.Head)
	default:
		now = fmt.Sprintf("the new one has record_hash %q there", e.Now)
	}
	return fmt.Sprintf("follow %s: the database was replaced (another file is at the path now) and the new file does not continue the chain read so far: "+
		"seq %d had recordHash %s in the file read so far, and %s. Records may be missing or rewritten: "+
		"compare the new file with what the SIEM holds (audit-fetch | audit-verify) and with a backup before starting again",
		e.Path, e.Seq, e.Hash, now)
}

// watchEvery bounds how often a Follow reading a file without its -wal
// tries the normal way again.
const watchEvery = time.Second

// FileID is a file's identity (device and inode): another FileID at the
// same path means the file was replaced (a restore, a rename over it).
type FileID struct{ dev, ino uint64 }

type fileID = FileID

// statID is the identity (device and inode) of the file at path; false if
// there is none.
func statID(path string) (fileID, bool) { return StatID(path) }

// StatID is the identity of the file at path; false if there is none.
func StatID(path string) (FileID, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

func (db *DB) logf(format string, args ...any) {
	if db.log != nil {
		db.log(fmt.Sprintf(format, args...))
	}
}

// checkReplaced looks at the file at the path while s is caught up. If it
// is another file than the one s reads, it returns a scanner on the new
// file at s's position, once the new file proves it holds the last row s
// read (same seq, same record_hash), or a *ReplacedError. A file gone from
// the path is waited for (the old one is read on meanwhile). A scanner
// reading without the -wal (see below) tries the normal way again every
// watchEvery.
func (db *DB) checkReplaced(ctx context.Context, s *scanner, f Filter) (*scanner, error) {
	now, ok := statID(db.path)
	if !ok {
		// Said at once, then once a minute: a stall must be seen.
		if s.missing.IsZero() || time.Since(s.missingLog) >= time.Minute {
			if s.missing.IsZero() {
				s.missing = time.Now()
			}
			s.missingLog = time.Now()
			db.logf("the database file %s is gone from its path (removed, or being replaced) since %s: still reading the file open until another is there",
				db.path, s.missing.UTC().Format(time.RFC3339))
		}
		return nil, nil
	}
	s.missing = time.Time{}
	if now == s.id && (!s.noWAL || time.Since(s.watched) < watchEvery) {
		return nil, nil
	}
	s.watched = time.Now()
	aSeq, aHash, err := s.lastRow(ctx)
	if err != nil {
		return nil, err
	}
	ns, err := db.scannerAt(ctx, f, s, now, false)
	if err == nil {
		// A -wal that is not the file's own may also make SQLite show the
		// old database (its pages all in the -wal) instead of the file.
		if alone := db.foreignWAL(ctx, f, s, now, ns); alone != nil {
			ns.discard()
			ns, err = alone, errForeignWAL
		}
	}
	if err != nil {
		if !isCorrupt(err) && err != errForeignWAL {
			// Not readable yet (being created: no table yet; or gone
			// again): try again at the next poll.
			if ctx.Err() != nil {
				return nil, err
			}
			if !s.noWAL && time.Since(s.unreadyLog) >= time.Minute {
				s.unreadyLog = time.Now()
				db.logf("the database file %s was replaced; the new file cannot be read yet (%v): trying again at every poll", db.path, err)
			}
			return nil, nil
		}
		// SQLite reads the new file as malformed. A -wal left beside it by
		// the old database (a daemon still holding the old file, or killed
		// without a checkpoint) does that: SQLite applies any -wal at the
		// path to the file at the path, whatever database it came from.
		// Read the file without it (immutable=1) if that is healthy.
		corrupt := err
		if s.noWAL && now == s.id {
			if ns != nil {
				ns.discard()
			}
			return nil, nil // still so: read on as we do
		}
		if corrupt != errForeignWAL {
			if _, serr := os.Stat(db.path + "-wal"); serr != nil {
				return nil, exitcode.New(exitcode.Verify, &ReplacedError{Path: db.path, Seq: aSeq, Hash: aHash, Cause: corrupt})
			}
			ns, err = db.scannerAt(ctx, f, s, now, true)
			if err != nil {
				return nil, exitcode.New(exitcode.Verify, &ReplacedError{Path: db.path, Seq: aSeq, Hash: aHash, Cause: corrupt})
			}
		}
		if err := ns.continues(ctx, aSeq, aHash, db.path); err != nil {
			ns.discard()
			return nil, err
		}
		db.logf("the database file %s was replaced, and the %s-wal beside it belongs to the old one: SQLite applies it to the new file (reading it as malformed, or as the old database), "+
			"but the file itself is healthy and holds seq %d with the same recordHash (read without the -wal). Reading it without its -wal; "+
			"new rows are seen once the stale -wal is gone. Move %s-wal and %s-shm away once no process has the old database open "+
			"(a writer opening the file with that -wal beside it would apply it too)", db.path, db.path, aSeq, db.path, db.path)
		s.stale = true
		return ns, nil
	}
	if err := ns.continues(ctx, aSeq, aHash, db.path); err != nil {
		ns.discard()
		if s.noWAL && now == s.id {
			return nil, nil // the -wal still does not fit: read on without it
		}
		return nil, err
	}
	// The pool of HeadSeq, Cursor, RecordHashAt (the lag gauges) still
	// reads the old file: connections older than a second are made anew.
	db.db.SetConnMaxLifetime(watchEvery)
	if s.noWAL && now == s.id {
		db.logf("the database file %s reads normally again (its -wal is its own): following it as usual", db.path)
	} else {
		db.logf("the database file %s was replaced (another file is at the path now); the new file holds seq %d with the same recordHash: following it", db.path, aSeq)
	}
	s.stale = true
	return ns, nil
}

// scannerAt opens a new connection on the file at the path (without its
// -wal when noWAL) and a scanner on it at s's position.
func (db *DB) scannerAt(ctx context.Context, f Filter, s *scanner, id fileID, noWAL bool) (*scanner, error) {
	c, err := openCapiMode(db.path, db.busy, db.mmapSize, noWAL)
	if err != nil {
		return nil, classify(ctx, db.path, s.op, db.busy, err)
	}
	ns, err := db.newScannerOn(ctx, f, s.op, c)
	if err != nil {
		return nil, err
	}
	ns.stale = true // never handed on to another scanner: it may read without the -wal
	ns.id, ns.noWAL, ns.pos, ns.last, ns.watched = id, noWAL, s.pos, s.last, time.Now()
	// Read something now: a malformed file says so here.
	if _, err := ns.head(ctx); err != nil {
		ns.discard()
		return nil, err
	}
	return ns, nil
}

// errForeignWAL: the -wal at the path does not fit the file (foreignWAL).
var errForeignWAL = errors.New("the -wal does not fit the file")

// foreignWAL compares the file read through its -wal (ns) with the file
// alone. Through a -wal of its own, the file shows the same rows and more;
// if the file alone has more rows, or another hash at the last row both
// have, the -wal came from another database. Then it returns a scanner on
// the file alone (at s's position); otherwise nil. Any failure of the
// comparison (a file being written is not read consistently without its
// -wal) counts as no evidence.
func (db *DB) foreignWAL(ctx context.Context, f Filter, s *scanner, id fileID, ns *scanner) *scanner {
	if _, err := os.Stat(db.path + "-wal"); err != nil {
		return nil
	}
	alone, err := db.scannerAt(ctx, f, s, id, true)
	if err != nil {
		return nil
	}
	foreign := func() bool {
		hw, err := ns.head(ctx)
		if err != nil {
			return false
		}
		ha, err := alone.head(ctx)
		if err != nil {
			return false
		}
		if ha > hw {
			return true
		}
		if ha == 0 {
			return false
		}
		h1, ok1, _, err1 := ns.hashAt(ctx, ha)
		h2, ok2, _, err2 := alone.hashAt(ctx, ha)
		return err1 == nil && err2 == nil && ok2 && (!ok1 || h1 != h2)
	}()
	if !foreign {
		alone.discard()
		return nil
	}
	return alone
}

// continues checks that s's file has the row seq with record_hash hash
// (nothing to check when seq is 0: no row was read before).
func (s *scanner) continues(ctx context.Context, seq int64, hash, path string) error {
	if seq == 0 {
		return nil
	}
	have, found, head, err := s.hashAt(ctx, seq)
	if err != nil {
		return err
	}
	if !found {
		return exitcode.New(exitcode.Verify, &ReplacedError{Path: path, Seq: seq, Hash: hash, Head: head})
	}
	if have != hash {
		return exitcode.New(exitcode.Verify, &ReplacedError{Path: path, Seq: seq, Hash: hash, Now: have})
	}
	return nil
}

// lastRow is the last row at or before s.pos: its seq and record_hash
// (0, "" if there is none).
func (s *scanner) lastRow(ctx context.Context) (int64, string, error) {
	if s.pos <= 0 {
		return 0, "", nil
	}
	var seq int64
	var hash string
	err := s.query(ctx, `SELECT seq, record_hash FROM audit_records WHERE seq <= ? ORDER BY seq DESC LIMIT 1`, s.pos, func(st uintptr) {
		seq = sqlite3.Xsqlite3_column_int64(s.c.tls, st, 0)
		b, _ := s.c.text(st, 1)
		hash = string(b)
	})
	return seq, hash, s.fail(ctx, err)
}

// hashAt is the record_hash at seq, or, if there is no such row, the last
// seq there is.
func (s *scanner) hashAt(ctx context.Context, seq int64) (hash string, found bool, head int64, err error) {
	err = s.query(ctx, `SELECT record_hash FROM audit_records WHERE seq = ?`, seq, func(st uintptr) {
		b, _ := s.c.text(st, 0)
		hash, found = string(b), true
	})
	if err == nil && !found {
		head, err = s.head(ctx)
	}
	return hash, found, head, s.fail(ctx, err)
}

// query runs q with one integer parameter and calls row for its first row,
// if any.
func (s *scanner) query(ctx context.Context, q string, arg int64, row func(st uintptr)) error {
	c := s.c
	c.ctx = ctx
	st, err := c.prepare(q)
	if err != nil {
		return err
	}
	defer c.finalize(st)
	if err := c.bindInt64(st, 1, arg); err != nil {
		return err
	}
	switch rc := sqlite3.Xsqlite3_step(c.tls, st); rc {
	case sqlite3.SQLITE_ROW:
		row(st)
	case sqlite3.SQLITE_DONE:
	default:
		return c.error(rc)
	}
	return nil
}

func isCorrupt(err error) bool {
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	if code, ok := sqliteCode(err); ok {
		return code&0xff == sqlite3.SQLITE_CORRUPT || code&0xff == sqlite3.SQLITE_NOTADB
	}
	return errors.Is(err, ErrNotAuditDB)
}
