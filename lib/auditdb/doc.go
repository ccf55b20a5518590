// Package auditdb is the Declaragent SQLite audit database: reading and
// following the hash-chained log (audit-read), reading a cursor anchor
// (audit-verify), appending chained records (audit-append) and committing
// exporter cursors (audit-ack). The schema is Declaragent's
// (docs/contract.md section 1); the driver is modernc.org/sqlite (pure Go),
// whose C API Scan and Follow call directly.
//
// # Read-only guarantees
//
// OpenReader never changes the database. The file must exist: it is
// checked with os.Stat first, and is then opened as a SQLite URI with
// mode=ro, so SQLite opens it O_RDONLY and cannot create it; every
// connection also runs PRAGMA query_only=1. A reader takes no write lock,
// never checkpoints, never changes the journal mode, and so never blocks the
// daemon's writes in WAL mode (the daemon's mode). Like every reader of a
// WAL database, it needs the -wal and -shm files: if they are absent (no
// writer has the database open) SQLite creates them, empty, with the
// database file's permissions, and leaves them behind. If auditpipe runs as
// a different user from the daemon, run it with the daemon's group and
// group-writable files, or start it after the daemon, so that the daemon
// can still write those files.
//
// # Chunked reads, and why
//
// Scan and Follow read in chunks. Each chunk is one statement over a range
// of seq that holds at most ReaderOptions.ChunkRows rows (10000), whatever
// the filter, and buffers at most ChunkBytes (8 MiB) of rows. The statement
// is finished before the callback sees the chunk's first row. A SQLite
// reader in WAL mode holds a snapshot for as long as its statement is open,
// and while it does, the daemon's checkpoints cannot reset the WAL, which
// then grows without bound. Buffering bounds that snapshot to the few
// milliseconds a chunk takes to read, even when the callback blocks for
// hours because the SIEM downstream is down. It also bounds memory.
//
// The chunk statement filters in SQL (tenant, kind, time) but is forced onto
// the rowid range (NOT INDEXED): with a tenant filter SQLite would otherwise
// walk idx_audit_tenant_ts over all of the tenant's rows and sort them, for
// every chunk. The position advances past rows the filter rejects, so a
// rare tenant costs one pass over the log, not one per chunk.
//
// The Row given to the callback, and its RecordJSON, are valid only until
// the callback returns. RecordJSON holds the bytes stored in record_json
// unchanged: the canonical record, exactly what was hashed. AppendLine
// turns a Row into a record line (docs/contract.md section 2) without
// allocating.
//
// # How chunks are read
//
// OpenReader's checks, HeadSeq, RecordHashAt and Cursor go through
// database/sql. Scan and Follow do not: each reads on a connection of its
// own made through SQLite's C API as modernc.org/sqlite/lib exposes it (the
// same translated SQLite the driver runs), because the driver's per-column
// Go strings, boxed integers and per-call locking were half the CPU time of
// a scan. That connection is opened as the others are (the "file:" URI with
// mode=ro, PRAGMA query_only=1, the busy timeout, the optional mmap_size),
// and SQLITE_OPEN_NOMUTEX, as only one goroutine uses it at a time.
// OpenReader opens the first one, and a finished Scan or Follow leaves its
// connection to the next. A row's columns are copied straight out of
// SQLite's memory: records into a buffer reused chunk after chunk, hashes
// into one new buffer per chunk that the Row strings point into, and each
// distinct tenant and kind (up to 4096 of them) is made a string once. Its
// errors are classified as the driver's are, with the same messages, and
// its busy handler waits on SQLite's own schedule but gives up as soon as
// the context is done, as the driver's does. The context is also checked
// after every row a chunk statement returns.
//
// # Follow mode
//
// Follow delivers the rows that exist, as Scan does, then waits for more.
// While it is caught up, every poll interval (100ms by default) it reads
// PRAGMA data_version on its own connection, which changes when another
// connection commits and costs no table read, and runs a chunk query only
// then. A committed row therefore reaches the callback in about half a poll
// interval on average. While the callback blocks (back-pressure) nothing is
// polled. Rows arrive in seq order, each exactly once: SQLite serialises
// write transactions, and AUTOINCREMENT never reuses a seq, so a row
// committed later always has a higher seq than every row committed before
// it, and none can appear behind the position. Follow returns nil when ctx
// is done, after the callback has finished the row in hand, or, with
// Filter.ToSeq, once that seq has been passed. Otherwise it returns the
// first error.
//
// # Writing
//
// OpenWriter opens the database read-write. With WriterOptions.Create
// (audit-append) it creates the file, Declaragent's schema and WAL mode if
// they are absent, but refuses a SQLite file that holds other tables and no
// audit_records. Without Create (audit-ack) the database must already have
// audit_records; only the cursor tables are added if they are missing.
// Writer connections run with synchronous=FULL: in WAL mode NORMAL can lose
// the last commits on power failure, which for an audit log is lost
// evidence and for a cursor is a commit the caller was told is durable.
//
// Append adds a batch of events in one BEGIN IMMEDIATE transaction: the
// write lock is taken before the tail's record_hash is read, so concurrent
// appenders, in one process or several, extend one chain and never fork
// it. Each stored record is the event's canonical form (lib/chain). If the
// event has no "ts", "ts" is added with the current time in milliseconds,
// because Declaragent's records carry their ts. Its "kind" must be a
// non-empty string. tenant_id is its tenantId, else its sourceTenantId
// (non-empty strings), else "_system". A bad event fails the whole batch
// with an *EventError before anything is written. A daemon that keeps the
// last hash in memory and does not reread it inside its own write
// transaction would fork the chain if audit-append wrote to its database
// while it runs; use audit-append on files that only auditpipe writes, or
// while the daemon is stopped.
//
// # Cursor tables
//
// audit_export_cursor(exporter_name, last_seq, updated_at) is Declaragent's
// table, written as Declaragent writes it: an upsert that ignores a lower
// last_seq. auditpipe_cursor_hash(exporter_name, last_seq, last_hash,
// updated_at) is auditpipe's own table, which Declaragent ignores. It keeps
// the record_hash of the last delivered record, so that audit-verify can
// anchor a resumed stream. CommitCursor upserts both in one transaction,
// each monotonically, and returns the cursor as it is afterwards. updated_at
// is in milliseconds since the epoch. Cursor reports LastHash only when the
// two tables agree on last_seq: Declaragent's own tools move
// audit_export_cursor without touching our table. A database without
// auditpipe_cursor_hash gives LastHash "", and one without
// audit_export_cursor gives Found false.
//
// # Errors
//
// Database failures are a *DBError with the path, the operation and one of
// ErrNotFound, ErrNotAuditDB, ErrCorrupt, ErrLocked (SQLITE_BUSY after the
// busy timeout, 5s by default) or ErrCantOpen. The message says what to do.
// Each is wrapped with exitcode.Database (exit code 5), so a command's Main
// maps it without help; test for it with errors.Is and errors.As. A rejected
// event is an *EventError wrapped with exitcode.Input (4). Context errors are
// returned as they are. Anything else, for example an I/O error, is
// "op path: err" with the default exit code.
package auditdb
