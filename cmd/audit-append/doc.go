/*
audit-append appends events to a Declaragent audit database as chained
records. It is the writer that producers, demos and tests need; Declaragent's
daemon is the usual writer of production databases.

Synopsis:

	audit-append --db PATH [--batch N] [--busy-timeout D] < events.ndjson

# Input

One JSON object per line (plain, gzip or zstd). Each must have a string
"kind". "ts" (integer ms since the epoch) is added with the current time if
absent. The record stored is the event's canonical form (docs/contract.md section
3), tenant_id is its tenantId, else its sourceTenantId, else "_system".

# Output

Nothing on stdout; a summary on stderr (records appended, seq range). The
database is created with Declaragent's exact schema (and WAL) if absent.

# Concurrency

Each transaction runs under BEGIN IMMEDIATE: the write lock is taken before
the tail of the chain is read, so several appenders (and the daemon) never
fork the chain. A transaction holds at most --batch events and also ends when
input pauses, so a slow producer's events are committed promptly.

# Errors

A line that is not a JSON object with a kind stops the run with exit 4,
naming the line; every event before it is appended (the good events of its
transaction are committed on their own).

# Flags

Each flag can also be set as AUDIT_APPEND_<FLAG>.

	-db PATH          audit database (created if absent)
	-batch N          events per transaction at most (default 500)
	-busy-timeout D   wait for another writer's lock (default 10s)
	-max-line N       maximum line length (default 64 MiB, ndjson.DefaultMaxLine)
	-quiet            no summary line

# Exit codes

	0 ok, 1 runtime failure, 2 usage, 4 malformed event, 5 database error

# Example

	audit-sample --count 1000 | audit-append --db sample.db
	audit-read --db sample.db | audit-verify >/dev/null
*/
package main
