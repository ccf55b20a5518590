/*
audit-read streams record lines out of a Declaragent audit database, or out
of NDJSON exports for forensic replay.

Synopsis:

	audit-read --db PATH [--from-seq N] [--to-seq N] [--since T] [--until T]
	           [--tenant A,B] [--kind K,L] [--from-cursor NAME] [--follow]
	audit-read [filters] FILE|- ...
	audit-read --quarantine [filters] FILE|- ...

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

# Quarantine input

With --quarantine, the input files are quarantine files written by
audit-ship --quarantine, one entry per record the SIEM rejected:

	{"quarantinedAt":1764244800123,"exporter":"elastic:prod","seq":42,"recordHash":"…","reason":"400 …","line":{"seq":42,…}}

audit-read emits the record line of each entry: the exact bytes of its
"line" value, not a re-serialisation (jq -c .line would change number
spellings and escapes, and so the bytes the SIEM gets), so the records go
out as they were first read. Entries come out in file order; a record found
twice (by seq and recordHash: quarantined on two runs, or by two shippers
sharing the file) comes out once. The filters apply to the embedded records.
An entry that is not valid JSON or has no "line" object is reported with its
line number and skipped, and the exit code is then 4. Quarantined records
are not a contiguous chain: check them with audit-verify --mode report.
After fixing the cause (a mapping, an ingest pipeline, a size limit),
re-ship them and keep the file for the record:

	audit-read --quarantine /var/lib/auditpipe/poison.ndjson \
	  | audit-verify --mode report --report reship.json \
	  | audit-ship --kind elastic --url https://es.example.com:9200 --api-key env:ELASTIC_API_KEY \
	      --exporter elastic:reship --acks - >/dev/null

Use an exporter name of its own (or discard the acks, as here): the acks of
a re-ship cover old seqs, which audit-ack would ignore anyway since its
cursor only moves forward. Elasticsearch's create with the recordHash as _id
makes the re-ship idempotent; Splunk and Datadog can store a record twice if
the same quarantine file is re-shipped twice.

The format is detected by the flag, not guessed: a quarantine file given
without --quarantine is not a record stream, and audit-verify rejects it.

# Flags

Each flag can also be set as AUDIT_READ_<FLAG> (upper case, dashes as
underscores), or in a file named by -config. Run audit-read -h for the list.
-max-line N caps an NDJSON input line (default 64 MiB, as in every stage:
far above any record, it only bounds memory; a line is held whole only
when it comes).

# Metrics

	-metrics-listen ADDR    serve Prometheus metrics at http://ADDR/metrics (port 0: pick one, printed on stderr)
	-metrics-file PATH      write them to a node_exporter textfile (.prom), atomically, every 5s and at exit
	-metrics-exporter NAME  exporter label (default --from-cursor)
	-metrics-linger D       keep serving this long after the work is done, for a last scrape

Every series carries exporter (the cursor name) and vendor (its kind, from a
name like splunk:prod) when known. audit-read exposes:

	declaragent_audit_backpressure_paused_total   writes to stdout that blocked > 100ms: the pipeline is throttling reading
	auditpipe_backpressure_paused_seconds_total   time spent in those writes
	auditpipe_backpressure_blocked_seconds        how long the write in progress has been blocked (a stall counts no pause until it returns)
	auditpipe_records_in_total, auditpipe_bytes_in_total     rows (or lines) read; bytes without the newline
	auditpipe_records_out_total, auditpipe_bytes_out_total   record lines written
	auditpipe_stage_last_seq                      seq of the last record written
	declaragent_audit_last_seq                    --follow only: the head of the log (MAX(seq), read every second)

plus the process and Go runtime metrics over HTTP. With --follow,
declaragent_audit_last_seq - auditpipe_stage_last_seq is how far reading
lags the log; it grows while back-pressure holds audit-read back.

# Progress

When stderr is a terminal (and without -quiet), a progress line is redrawn
in place every half second: records, records/s, the current seq and, reading
a database, the head and the time left. Nothing of it is written when stderr
is a pipe or a file.

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
