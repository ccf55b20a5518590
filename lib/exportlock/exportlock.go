// Package exportlock keeps two pipelines off one exporter's cursor.
//
// Two overlapping runs of the same exporter (two cron drains, a drain
// started while the service runs) each read from the same cursor, each ship
// everything after it, and interleave what they deliver. So every stage that
// reads or writes an exporter's cursor (audit-read --from-cursor,
// audit-verify --from-cursor, audit-ack) takes an exclusive lock for its
// role on (database, exporter) before it starts, and a second holder of the
// same role is refused at once with the usage exit code, naming the pid that
// holds it.
//
// One pipeline's own stages run at the same time (its audit-read and its
// audit-ack), so the lock is per role: one lock file per database and
// exporter, and in it one byte range per role, locked with a Linux
// open-file-description lock (F_OFD_SETLK). The kernel releases it when the
// holder's descriptor is closed, so on any death (kill -9, OOM), and it is
// never released by another descriptor of the same process being closed
// (as a POSIX lock would be). The holder writes "pid N prog P since T" into
// its role's range, for the message the next one prints.
//
// The lock file is
//
//	DIR/BASE.EXPORTER.lock
//
// where BASE is the database file's name, EXPORTER the exporter name with
// every byte outside [A-Za-z0-9._:@+=-] written as %XX, and DIR the
// database's directory, or the --lock-dir the stage was given, or else
// $AUDITPIPE_LOCK_DIR. A stage never
// runs without the lock: if the file cannot be created or opened
// read-write (a read-only directory, as a systemd unit may make it), it
// stops with the usage code and says to give --lock-dir, the same directory
// for every stage of every pipeline on that database.
package exportlock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// Role is the part a stage plays for the exporter; each has its own lock.
type Role int

// The roles. Their values are the slots in the lock file: do not reorder.
const (
	Read   Role = iota // audit-read --from-cursor
	Verify             // audit-verify --from-cursor
	Ack                // audit-ack
)

func (r Role) String() string {
	switch r {
	case Read:
		return "audit-read"
	case Verify:
		return "audit-verify"
	case Ack:
		return "audit-ack"
	}
	return "role " + strconv.Itoa(int(r))
}

// EnvDir names the environment variable that gives the lock directory when
// a stage has no --lock-dir: set it once for every pipeline on a host (the
// systemd units and the cron drains alike), so that all of them agree.
const EnvDir = "AUDITPIPE_LOCK_DIR"

// slot is the size of each role's byte range, holding the holder's note.
const slot = 128

// Linux fcntl commands for open-file-description locks (not in package
// syscall).
const (
	fOFDGetlk = 36
	fOFDSetlk = 37
)

// Lock is a held lock. Close releases it; so does the process's death.
type Lock struct {
	f    *os.File
	Path string
	Role Role
}

// Close releases the lock (its note is cleared first).
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.WriteAt(make([]byte, slot), int64(l.Role)*slot)
	err := l.f.Close()
	l.f = nil
	return err
}

// Held reports whether another open file description holds role's lock on
// this lock's file: for a stage that holds its own role and wants to know
// whether, say, an audit-ack is running for the same exporter. Errors read
// as not held.
func (l *Lock) Held(role Role) bool {
	if l == nil || l.f == nil {
		return false
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(role) * slot, Len: slot}
	if err := syscall.FcntlFlock(l.f.Fd(), fOFDGetlk, &lk); err != nil {
		return false
	}
	return lk.Type != syscall.F_UNLCK
}

// FileName is the name of the lock file of exporter on the database whose
// file name is base.
func FileName(base, exporter string) string {
	var b strings.Builder
	b.WriteString(base)
	b.WriteByte('.')
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(exporter); i++ {
		c := exporter[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("._:@+=-", c) >= 0
		if ok && !(i == 0 && c == '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	b.WriteString(".lock")
	return b.String()
}

// PathFor is the lock file of exporter on the database at db: in lockDir,
// or beside the database when lockDir is "".
func PathFor(db, lockDir, exporter string) string {
	dir := lockDir
	if dir == "" {
		dir = filepath.Dir(db)
	}
	return filepath.Join(dir, FileName(filepath.Base(db), exporter))
}

// HeldError is the lock held by another process (or another descriptor of
// this one). It comes wrapped with exit code 2 (usage).
type HeldError struct {
	Path     string
	Exporter string
	DB       string
	Role     Role
	Holder   string // the holder's note, "pid N ..."; "" if it has not written it yet
}

func (e *HeldError) Error() string {
	who := "another process"
	if e.Holder != "" {
		who = e.Holder
	}
	return fmt.Sprintf("exporter %s on %s is in use by another pipeline: its %s (%s) holds %s; "+
		"two pipelines on one exporter each ship everything after the cursor. "+
		"Wait for that run to end or stop it; each concurrent pipeline needs its own --exporter (and cursor)",
		e.Exporter, e.DB, e.Role, who, e.Path)
}

// Acquire takes role's lock on (db, exporter), without waiting. prog is
// written in the note with the pid. The errors carry their exit code: 2
// (usage) for a lock held elsewhere (*HeldError) and for a lock file that
// cannot be created or opened read-write. When db does not exist there is
// nothing to lock (and no lock file is made): it returns a nil *Lock (whose
// Close does nothing) and the stage reports the missing database itself.
func Acquire(db, lockDir, exporter string, role Role, prog string) (*Lock, error) {
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	flag := "--lock-dir"
	if lockDir == "" {
		lockDir, flag = os.Getenv(EnvDir), EnvDir
	}
	if lockDir != "" {
		fi, err := os.Stat(lockDir)
		if err != nil {
			return nil, exitcode.Errorf(exitcode.Usage, "%s: %v", flag, err)
		}
		if !fi.IsDir() {
			return nil, exitcode.Errorf(exitcode.Usage, "%s %s is not a directory", flag, lockDir)
		}
	}
	path := PathFor(db, lockDir, exporter)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		hint := "give --lock-dir DIR (or set " + EnvDir + "=DIR), a directory every stage of every pipeline on this database can write " +
			"(the same one for all, cron drains included, e.g. /run/auditpipe), or create the lock file there writable by this user"
		if lockDir != "" {
			hint = "check the permissions of " + flag + " " + lockDir
		}
		return nil, exitcode.Errorf(exitcode.Usage, "cannot open the exporter lock %s for %s (one pipeline per exporter is enforced with it, never skipped): %v; %s",
			path, exporter, unwrapPath(err), hint)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, exitcode.Errorf(exitcode.Usage, "the exporter lock %s is not a regular file", path)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(role) * slot, Len: slot}
	if err := syscall.FcntlFlock(f.Fd(), fOFDSetlk, &lk); err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			note := readNote(f, role)
			f.Close()
			return nil, exitcode.New(exitcode.Usage, &HeldError{Path: path, Exporter: exporter, DB: db, Role: role, Holder: note})
		}
		f.Close()
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
			return nil, exitcode.Errorf(exitcode.Usage, "the exporter lock %s: this kernel or file system has no open-file-description locks (F_OFD_SETLK): %v; use a local --lock-dir", path, err)
		}
		return nil, exitcode.Errorf(exitcode.Usage, "lock %s: %v", path, err)
	}
	note := fmt.Sprintf("pid %d %s since %s", os.Getpid(), prog, time.Now().UTC().Format(time.RFC3339))
	buf := make([]byte, slot)
	copy(buf[:slot-1], note)
	if _, err := f.WriteAt(buf, int64(role)*slot); err != nil {
		f.Close()
		return nil, exitcode.Errorf(exitcode.Usage, "write the exporter lock %s: %v", path, err)
	}
	return &Lock{f: f, Path: path, Role: role}, nil
}

func readNote(f *os.File, role Role) string {
	buf := make([]byte, slot)
	n, _ := f.ReadAt(buf, int64(role)*slot)
	buf = buf[:n]
	if i := strings.IndexByte(string(buf), 0); i >= 0 {
		buf = buf[:i]
	}
	s := strings.TrimSpace(string(buf))
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	return s
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// FollowerWait is how long the roles after audit-read (audit-verify, audit-ack)
// wait for their lock before they are refused. Two pipelines started at once
// (two cron drains) race for each role: if one took audit-read's lock and
// the other audit-ack's, a refusal at once would stop both, and nothing
// would ship until the next run. audit-read's role decides which pipeline
// runs: it is refused at once, its pipeline ends (each stage sees its input
// end), and the losing pipeline's verify and ack release their locks within
// milliseconds, which the winner's are waiting for.
const FollowerWait = 5 * time.Second

// AcquireFollower is Acquire for audit-verify and audit-ack: a lock held by
// another process is tried again every 50 ms for up to wait (FollowerWait if
// 0), saying once through logf who holds it, before the *HeldError. A
// cancelled ctx (a stop signal) ends the wait with ctx's error.
func AcquireFollower(ctx context.Context, db, lockDir, exporter string, role Role, prog string, wait time.Duration, logf func(string)) (*Lock, error) {
	if wait <= 0 {
		wait = FollowerWait
	}
	deadline := time.Now().Add(wait)
	said := false
	for {
		l, err := Acquire(db, lockDir, exporter, role, prog)
		var held *HeldError
		if err == nil || !errors.As(err, &held) || !time.Now().Before(deadline) {
			return l, err
		}
		if !said && logf != nil {
			who := held.Holder
			if who == "" {
				who = "another process"
			}
			logf(fmt.Sprintf("the %s lock of exporter %s is held by %s: waiting up to %s for it (a pipeline refused at its audit-read lets go at once)", role, exporter, who, wait))
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
