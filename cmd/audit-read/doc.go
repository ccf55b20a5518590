/*
audit-read streams record lines out of a Declaragent audit database, or out
of NDJSON exports for forensic replay.

Synopsis:

	audit-read --db PATH [--from-seq N] [--to-seq N] [--since T] [--until T]
	           [--tenant A,B] [--kind K,L] [--from-cursor NAME [--lock-dir DIR]] [--follow]
	audit-read [filters] FILE|- ...
	audit-read --quarantine [filters] FILE|- ...

# Output

One record line per row, in seq order (docs/contract.md section 2):

	{"seq":42,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{…},"prevHash":"…","recordHash":"…"}

with "record" being record_json verbatim: the exact bytes that were hashed,
so audit-verify takes its fast path.

Between record lines audit-read writes mark lines for audit-verify, which
consumes them (every other stage drops them; they are never shipped). They
go only where audit-verify reads them: --marks auto (the default) writes
them to a pipe, a FIFO or a socket, not into a regular file nor onto a
terminal, so an export redirected into a file holds records only; --marks
always or never decides it. Without marks a break among the rows a filter
left out cannot travel in-band: audit-read then reports it itself, exit 3. Their
layout is one key order, exactly (docs/design.md, "Marks"):

	{"mark":{"type":"anchor","source":"cursor","exporter":"splunk:prod","seq":41,"hash":"<64 hex>","chain":"<64 hex>"}}
	{"mark":{"type":"anchor","source":"db-row","seq":149,"hash":"<64 hex>","chain":"<64 hex>"}}
	{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"<64 hex>","verified":16,"tombstones":0}}

An anchor mark comes before the first line whenever the read does not start
at genesis: with --from-cursor (always, seq 0 and hash "" when nothing was
shipped yet; source "cursor": the cursor and the hash audit-ack shipped with
it, read in one statement; "cursor-row" when the cursor has no shipped hash
and the database row's own record_hash stands in for it, which proves less,
and audit-read says so), and with --from-seq N > 1 (source "db-row": the row
before). audit-verify anchors on it, so acks that land between the starts of
the two stages cannot make a finding. A read that finds nothing writes
nothing. Its "chain" is the id of the database's chain (docs/contract.md
section 5): the recordHash of its first record (seq 1), or --chain-id. A
database whose first row is gone has no id of its own: the mark then goes
without "chain" and a notice on stderr says to give --chain-id (a Kafka
pipeline keys every record by it; see docs/fleet.md).

A skip mark stands for a run of rows a filter left out (--tenant, --kind,
--since, --until; in file mode also --from-seq and --to-seq). audit-read
reads every row of the seq range, checks the chain of those it leaves out
with a verifier of its own, and writes the mark before the next record it
keeps (at the end of a drain, and when --follow is caught up, for the run so
far): the seqs it covers, the recordHash the next record must link to, how
many verified, and the first break it found, if any (breaks, breakSeq,
breakReason, breakDetail), which audit-verify reports as that break. A
filtered read therefore verifies in fail-closed mode: the holes are notices,
a row altered among those left out is a true finding. The summary line says
how many rows were left out in how many holes.

# The database

The database is opened read-only (mode=ro, query_only) and never blocks the
daemon that writes it: the file is in WAL mode, readers do not take the write
lock, and rows are read in chunks of bounded size, each chunk's statement
finished before its rows are written out, so a slow pipeline never holds a
read transaction open (which would stop the writer's WAL checkpoints).

--follow emits the existing rows and then keeps tailing new ones, checking
every --poll (default 20ms, was 100ms; PRAGMA data_version, no table read),
so a row the writer commits is read 10 ms later on average and within one
poll. Each poll while caught up costs about 0.1-0.4 ms of CPU (the pragma
and a stat of --db): an idle follow pipeline takes ~2% of one core at
20ms, ~1% at 100ms (docs/perf.md); --poll 100ms for hosts that prefer
that to latency. When the next stage is slow, the
pipe fills, audit-read blocks writing, and it stops polling: that is the
back-pressure. The first SIGINT or SIGTERM ends follow mode cleanly (exit 0).

# The database replaced under --follow

The file at --db is looked at on every poll. When another file is there (its
device and inode differ from the one open: the database removed and
recreated, or a copy renamed over it), audit-read opens it and goes on only
if it holds the last row read, at the same seq with the same recordHash: the
new file continues the chain, nothing read so far is lost or rewritten, and
it says so on stderr ("the database file PATH was replaced ...; the new file
holds seq N with the same recordHash: following it"). Otherwise it stops with
exit 3 and names the path, the seq and both hashes (or that the new file has
no such seq, and its last): that is a database replaced by another chain, a
shorter backup or a corrupt file, for a person to look at before anything is
shipped from it. While no file is at the path it says so once and reads on
the file it has open; a new file that cannot be read yet (being created) is
tried again at the next poll.

SQLite applies any PATH-wal it finds to the file at PATH, whatever database
that -wal came from. A copy put in place of a database whose -wal was left
beside it (its daemon killed without a checkpoint, or still running on the
old file) then reads as malformed ("database disk image is malformed") or,
when all the old database's pages are in that -wal, as the old database. When
the file alone (read with SQLite's immutable=1, without the -wal) is healthy
(quick_check ok) and the -wal does not fit it (the file read through the -wal
is malformed, or has fewer rows than the file alone, or another hash at the
file's last row; looked at twice, apart), audit-read reads the file without
that -wal, says so on stderr naming PATH-wal, and, with --follow, tries the
normal way again every second. Rows committed through that -wal are not seen
until it is gone: move PATH-wal and PATH-shm away once no process has the old
database open (a writer opening the file with that -wal beside it applies it
too, corrupting it for good).

# One pipeline per exporter

With --from-cursor, audit-read takes the exporter's read lock (see
lib/exportlock): the file PATH.EXPORTER.lock beside the database (or in
--lock-dir), locked with a Linux open-file-description lock that the kernel
releases when the process ends, however it ends. A second audit-read
--from-cursor on the same database and exporter (a second cron drain, a
drain started while the service runs) is refused at once with exit 2,
naming the holder's pid and the lock file: two pipelines on one exporter
would each ship everything after the cursor. audit-verify --from-cursor and
audit-ack take their own roles' locks on the same file, so the stages of one
pipeline run together. Reading without --from-cursor takes no lock.

Without --follow, audit-read reads every row in a moment, long before its
records are shipped and acked. So once it has written its last row it
keeps the read lock until the committed cursor covers that row, while an
audit-ack holds the exporter's ack lock and the cursor keeps moving (a
minute without a move, and it lets go): a second drain started meanwhile
is refused, where it would otherwise read the cursor from before the first
drain's acks and ship those records again. Its output is written and
flushed before it waits, and nothing is held without an audit-ack (an
export to a file), once the audit-ack is gone, or after a stop signal; a
downstream that exits ends the wait as any closed output does.

When the database's directory is read-only for this user (a systemd unit's
ReadOnlyPaths=, ProtectSystem=), the lock file cannot be made there and
audit-read stops with exit 2 saying so; it never runs unlocked. Give
--lock-dir DIR, or set AUDITPIPE_LOCK_DIR=DIR (read by every stage without
--lock-dir; the units in examples/pipelines/systemd set /run/auditpipe), the
same directory to every stage of every pipeline on that database, cron
drains included: a stage given another directory does not see the lock.

--from-cursor NAME starts after that exporter's committed last_seq (from
audit_export_cursor; audit-cursor lists and moves cursors), and writes it
as an anchor mark. A NAME with no cursor while the database has others is
refused (exit 2) with a did-you-mean: starting it would ship the whole log
again. Add --new-cursor when that is meant (a new exporter's first run).
Filters combine: --from-seq/--to-seq (inclusive), --since (ts >= T) and
--until (ts < T) as RFC 3339 or ms since the epoch, --tenant and --kind
(comma-separated lists). The database is read by seq range; the other
filters are applied to each row, and the rows they leave out are checked and
written as skip marks (see Output), so filtered output verifies with
audit-verify in either mode. A filter makes audit-read hash the rows it
leaves out: --since on a large log checks the whole prefix.

# NDJSON replay

Given files (or - for stdin), plain, gzip or zstd (detected by magic bytes),
audit-read passes the lines on. Without filters every line is passed as it
stands, bad ones included, so that audit-verify sees and reports them; with
filters each line must parse as a record, and the lines left out become skip
marks as from the database. A line that cannot be delivered whole (too long,
truncated last line, invalid UTF-8, NUL) is reported with its line number,
the others go on, and the exit code is 4.

A mark line in an input file is refused the same way (exit 4, named by its
line, not passed on): no export holds one, since every stage after
audit-verify drops them, so one in a file was put there by hand.

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
is a pipe or a file. In a pipeline whose audit-ship draws its own line (on
the same terminal), audit-read's gives way to it.

# Threads

audit-read runs Go code on one thread at a time (GOMAXPROCS 1) unless the
environment sets GOMAXPROCS. In a pipeline of five Go processes a second
thread per process bought no throughput on a 2-core host and cost CPU at
every hand-off between goroutines: the five stages together used about 10%
less CPU per record on one on a host busy with other work, less on a quiet
one (docs/perf.md, scripts/bench-ab.sh).
GOMAXPROCS=N gives audit-read N threads.

# Exit codes

	0    done (or stopped by SIGINT/SIGTERM)
	1    runtime failure
	2    usage; or the exporter's lock is held by another pipeline (its pid named), or cannot be made (give --lock-dir)
	3    --follow: the database was replaced by a file that does not hold the last row read (path, seq and both hashes named);
	     --from-cursor: the cursor has no shipped hash and the database has no row at its seq (rows removed?);
	     without marks (a file, --marks never): a break among the rows a filter left out (its seq named)
	4    malformed NDJSON input, or a mark line in it (the good lines were emitted)
	5    database missing, not an audit database, corrupt, or locked longer than --busy-timeout
	141  stdout closed by the next stage (quiet)

# Example

	audit-read --db audit.db --from-cursor splunk:prod --follow | audit-verify --db audit.db --from-cursor splunk:prod | ...
*/
package main
