package auditdb

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// capiConn is a read-only connection made through SQLite's C API
// (modernc.org/sqlite/lib, SQLite translated to Go) rather than through
// database/sql. Scan and Follow read on one: the driver copies every TEXT
// column into a new Go string, boxes every integer and takes the
// connection's mutex around each call, which was half the CPU time of a
// scan. Here a row's bytes are copied straight out of SQLite's memory into
// the scanner's buffers, and the connection is opened SQLITE_OPEN_NOMUTEX.
//
// A capiConn is used by one goroutine at a time (NOMUTEX requires it). It
// is not safe for concurrent use, and must be closed.
type capiConn struct {
	tls  *libc.TLS
	db   uintptr // *sqlite3
	busy time.Duration
	// ctx is the context of the call in progress, which busyWait reads:
	// a wait for a lock ends once it is done.
	ctx context.Context
}

// capiError is a failed SQLite call on a capiConn. Its message is formatted
// as modernc.org/sqlite formats its *sqlite.Error, so an error reads the same
// whichever path met it, and classify maps its code the same way.
type capiError struct {
	msg  string
	code int
}

func (e *capiError) Error() string { return e.msg }

// Code returns the (extended) SQLite result code.
func (e *capiError) Code() int { return e.code }

// openCapi opens path read-only as OpenReader's connections are opened: a
// "file:" URI with mode=ro (so SQLite opens it O_RDONLY and never creates
// it), the busy timeout, the optional mmap_size, and query_only=1 last.
func openCapi(path string, busy time.Duration, mmapSize int64) (*capiConn, error) {
	return openCapiMode(path, busy, mmapSize, false)
}

// openCapiMode is openCapi, or with noWAL the file alone, read as
// immutable (SQLite's immutable=1: no -wal, no -shm, no locks). That is
// only for a file whose -wal is not its own (see checkReplaced).
func openCapiMode(path string, busy time.Duration, mmapSize int64, noWAL bool) (*capiConn, error) {
	params := url.Values{"mode": {"ro"}}
	if noWAL {
		params.Set("immutable", "1")
	}
	name, err := dsn(path, params)
	if err != nil {
		return nil, err
	}
	zName, err := libc.CString(name)
	if err != nil {
		return nil, err
	}
	c := &capiConn{tls: libc.NewTLS(), busy: busy}
	pdb, err := c.malloc(int(unsafe.Sizeof(uintptr(0))))
	if err != nil {
		libc.Xfree(c.tls, zName)
		c.tls.Close()
		return nil, err
	}
	// NOMUTEX: SQLite takes no lock of its own around each call on this
	// connection, as only one goroutine uses it at a time.
	const flags = sqlite3.SQLITE_OPEN_READONLY | sqlite3.SQLITE_OPEN_URI | sqlite3.SQLITE_OPEN_NOMUTEX
	rc := sqlite3.Xsqlite3_open_v2(c.tls, zName, pdb, flags, 0)
	db := *(*uintptr)(cptr(pdb))
	libc.Xfree(c.tls, pdb)
	libc.Xfree(c.tls, zName)
	if rc != sqlite3.SQLITE_OK {
		// sqlite3_open_v2 may return a handle even when it fails; the
		// message is on it, and it must be closed.
		err := c.errorFor(rc, db)
		if db != 0 {
			sqlite3.Xsqlite3_close_v2(c.tls, db)
		}
		c.tls.Close()
		return nil, err
	}
	c.db = db
	sqlite3.Xsqlite3_extended_result_codes(c.tls, db, 1)
	// A busy handler of our own, with SQLite's schedule, that also gives
	// up once the context of the call is done.
	busyConns.Store(db, c)
	sqlite3.Xsqlite3_busy_handler(c.tls, db, busyWaitPtr, db)
	pragmas := []string{}
	if mmapSize > 0 {
		pragmas = append(pragmas, "PRAGMA mmap_size="+strconv.FormatInt(mmapSize, 10))
	}
	pragmas = append(pragmas, "PRAGMA query_only=1")
	for _, p := range pragmas {
		if err := c.exec(p); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// close releases the connection and its TLS. Statements must have been
// finalized.
func (c *capiConn) close() {
	if c.db != 0 {
		// Forget the handle before SQLite frees it: the address is reused
		// at once, and a late Delete would drop the next connection's entry.
		busyConns.Delete(c.db)
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	if c.tls != nil {
		c.tls.Close()
		c.tls = nil
	}
}

func (c *capiConn) malloc(n int) (uintptr, error) {
	p := libc.Xmalloc(c.tls, types.Size_t(n))
	if p == 0 {
		return 0, fmt.Errorf("cannot allocate %d bytes of memory", n)
	}
	return p, nil
}

// errorFor builds the error for result code rc, with the message SQLite
// left on db, in modernc.org/sqlite's format: "errstr: errmsg (rc)", the
// errmsg left out when it only repeats errstr, and " (SQLITE_BUSY)" added
// for a plain SQLITE_BUSY.
func (c *capiConn) errorFor(rc int32, db uintptr) error {
	str := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	busy := ""
	if rc == sqlite3.SQLITE_BUSY {
		busy = " (SQLITE_BUSY)"
	}
	if db != 0 {
		if msg := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, db)); msg != str {
			return &capiError{msg: fmt.Sprintf("%s: %s (%d)%s", str, msg, rc, busy), code: int(rc)}
		}
	}
	return &capiError{msg: fmt.Sprintf("%s (%d)%s", str, rc, busy), code: int(rc)}
}

func (c *capiConn) error(rc int32) error { return c.errorFor(rc, c.db) }

// prepare compiles query into a statement, which the caller must finalize.
func (c *capiConn) prepare(query string) (uintptr, error) {
	zSQL, err := libc.CString(query)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, zSQL)
	pst, err := c.malloc(int(unsafe.Sizeof(uintptr(0))))
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, pst)
	if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, zSQL, -1, pst, 0); rc != sqlite3.SQLITE_OK {
		return 0, c.error(rc)
	}
	st := *(*uintptr)(cptr(pst))
	if st == 0 { // only a comment or white space
		return 0, fmt.Errorf("no statement in %q", query)
	}
	return st, nil
}

// finalize destroys a statement; 0 is ignored.
func (c *capiConn) finalize(st uintptr) {
	if st != 0 {
		sqlite3.Xsqlite3_finalize(c.tls, st)
	}
}

// exec runs a statement that needs no parameters, discarding its rows.
func (c *capiConn) exec(query string) error {
	st, err := c.prepare(query)
	if err != nil {
		return err
	}
	defer c.finalize(st)
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, st); rc {
		case sqlite3.SQLITE_ROW:
		case sqlite3.SQLITE_DONE:
			return nil
		default:
			return c.error(rc)
		}
	}
}

func (c *capiConn) bindInt64(st uintptr, i int, v int64) error {
	if rc := sqlite3.Xsqlite3_bind_int64(c.tls, st, int32(i), v); rc != sqlite3.SQLITE_OK {
		return c.error(rc)
	}
	return nil
}

// bindText binds a copy of v: SQLite keeps its own (SQLITE_TRANSIENT), so
// the C string is freed at once, and the binding outlives resets.
func (c *capiConn) bindText(st uintptr, i int, v string) error {
	z, err := libc.CString(v)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, z)
	if rc := sqlite3.Xsqlite3_bind_text(c.tls, st, int32(i), z, int32(len(v)), sqlite3.SQLITE_TRANSIENT); rc != sqlite3.SQLITE_OK {
		return c.error(rc)
	}
	return nil
}

// ints runs st, a statement that returns one row of integers, and stores
// the row's first len(dst) columns in dst. The statement is reset before
// ints returns, so no read transaction stays open.
func (c *capiConn) ints(ctx context.Context, st uintptr, dst ...*int64) error {
	c.ctx = ctx
	rc := sqlite3.Xsqlite3_step(c.tls, st)
	if rc != sqlite3.SQLITE_ROW {
		var err error
		if rc == sqlite3.SQLITE_DONE {
			err = fmt.Errorf("statement returned no row")
		} else {
			err = c.error(rc)
		}
		sqlite3.Xsqlite3_reset(c.tls, st)
		return err
	}
	for i, p := range dst {
		*p = sqlite3.Xsqlite3_column_int64(c.tls, st, int32(i))
	}
	sqlite3.Xsqlite3_reset(c.tls, st)
	return nil
}

// text returns column i of the current row of st as a slice of SQLite's
// own memory, valid until the next step or reset of st, and whether the
// value was NULL.
func (c *capiConn) text(st uintptr, i int32) (b []byte, null bool) {
	p := sqlite3.Xsqlite3_column_text(c.tls, st, i)
	n := sqlite3.Xsqlite3_column_bytes(c.tls, st, i)
	if p == 0 {
		// NULL, or out of memory converting a number to text.
		return nil, sqlite3.Xsqlite3_column_type(c.tls, st, i) == sqlite3.SQLITE_NULL
	}
	return unsafe.Slice((*byte)(cptr(p)), n), false
}

// cptr turns an address of C memory (libc's heap or SQLite's pages, which
// the Go garbage collector does not manage) into a pointer. Reading the
// uintptr's bits as a pointer, rather than converting it, is what keeps go
// vet quiet: the conversion rule it checks is about Go memory.
func cptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// busyConns maps a connection handle to its capiConn, for busyWait.
var busyConns sync.Map // uintptr -> *capiConn

// The retry schedule of SQLite's own busy callback (sqliteDefaultBusyCallback):
// the delay before the n-th retry, and the time waited before it, in ms.
var (
	busyDelays = [...]int64{1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100}
	busyTotals = [...]int64{0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228}
)

// busyWaitPtr is busyWait as a C function pointer, for sqlite3_busy_handler.
// The translated SQLite calls a function pointer by reinterpreting it as a
// Go func value, so the pointer is the func value's own word.
var busyWaitPtr = *(*uintptr)(unsafe.Pointer(&struct {
	f func(*libc.TLS, uintptr, int32) int32
}{busyWait}))

// busyWait is SQLite's default busy handler, sleeping on the same schedule
// up to the busy timeout, except that it gives up as soon as the context of
// the call in progress is done. pArg is the connection handle. It runs on
// the goroutine that made the call, so it reads ctx without a lock.
func busyWait(_ *libc.TLS, pArg uintptr, count int32) int32 {
	v, ok := busyConns.Load(pArg)
	if !ok {
		return 0
	}
	c := v.(*capiConn)
	timeout := max(c.busy.Milliseconds(), 1) // rounded up, as millis does for the driver
	var delay, prior int64
	if n := int64(len(busyDelays)); int64(count) < n {
		delay, prior = busyDelays[count], busyTotals[count]
	} else {
		delay = busyDelays[n-1]
		prior = busyTotals[n-1] + delay*(int64(count)-(n-1))
	}
	if prior+delay > timeout {
		if delay = timeout - prior; delay <= 0 {
			return 0
		}
	}
	t := time.NewTimer(time.Duration(delay) * time.Millisecond)
	defer t.Stop()
	var done <-chan struct{}
	if c.ctx != nil {
		done = c.ctx.Done()
	}
	select {
	case <-done:
		return 0
	case <-t.C:
		return 1
	}
}
