// Package auditdb is the Declaragent SQLite audit database (schema:
// docs/contract.md section 1). OpenReader reads and follows the
// hash-chained log without ever changing the file or holding the daemon's
// writes up, and delivers each row's record_json byte for byte; OpenWriter
// appends chained records and commits exporter cursors, each durably and
// monotonically. Database failures are a *DBError carrying exit code 5, a
// rejected event an *EventError carrying 4. How it reads, follows, writes
// and stores cursors, and why: docs/design.md, "lib/auditdb".

package auditdb
