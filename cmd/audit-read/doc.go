/*
audit-read streams record lines out of a Declaragent audit database, or out
of NDJSON exports for forensic replay.

Synopsis:

	audit-read --db PATH [--from-seq N] [--to-seq N] [--since T] [--until T]
	           [--tenant A,B] [--kind K,L] [--from-cursor NAME] [--follow]
	audit-read [filters] FILE|- ...

# Output

One record line per row, in seq order (CONTRACTS.md section 2):

	{"seq":42,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{…},"prevHash":"…","recordHash":"…"}

with "record" being record_json verbatim: the exact bytes that were hashed,
so audit-verify takes its fast path.

# The database

The database is opened read-only (mode=ro, query_only) and never blocks the
daemon that writes it: the file is in WAL mode, readers do not take the write
lock, and rows are read in chunks of bounded size, each chunk's statement
finished before its rows are written out, so a slow pipeline never holds a
read transaction open (which would stop the writer's WAL checkpoints).

--follow emits the existing rows and then keeps tailing new ones, checking
every --poll (default 100ms; PRAGMA data_version, no table read) so a row the
writer commits appears within about 250 ms. When the next stage is slow, the
pipe fills, audit-read blocks writing, and it stops polling: that is the
back-pressure. The first SIGINT or SIGTERM ends follow mode cleanly (exit 0).

--from-cursor NAME starts after that exporter's committed last_seq (from
audit_export_cursor). Filters combine: --from-seq/--to-seq (inclusive),
--since (ts >= T) and --until (ts < T) as RFC 3339 or ms since the epoch,
--tenant and --kind (comma-separated lists). Filtered output is not a
contiguous chain; verify it with audit-verify --mode report.

# NDJSON replay

Given files (or - for stdin), plain, gzip or zstd (detected by magic bytes),
audit-read passes the lines on. Without filters every line is passed as it
stands, bad ones included, so that audit-verify sees and reports them; with
filters each line must parse as a record. A line that cannot be delivered
whole (too long, truncated last line, invalid UTF-8, NUL) is reported with
its line number, the others go on, and the exit code is 4.

# Flags

Each flag can also be set as AUDIT_READ_<FLAG> (upper case, dashes as
underscores), or in a file named by -config. Run audit-read -h for the list.

# Exit codes

	0    done (or stopped by SIGINT/SIGTERM)
	1    runtime failure
	2    usage
	4    malformed NDJSON input (the good lines were emitted)
	5    database missing, not an audit database, corrupt, or locked longer than --busy-timeout
	141  stdout closed by the next stage (quiet)

# Example

	audit-read --db audit.db --from-cursor splunk:prod --follow | audit-verify --db audit.db --from-cursor splunk:prod | ...
*/
package main
