/*
audit-ack commits an exporter's cursor from the acks audit-ship writes.

Synopsis:

	audit-ack --db PATH --exporter NAME [--fifo PATH] [--commit-interval D]
	          [--from-seq N] [--tenant A,B] [--kind K,L] [--lock-dir DIR]

# Input

Ack lines (see audit-ship) from --fifo, or from stdin without it. The FIFO is
created (mode 0600) if absent and opened read-write, so it never reaches
end-of-file when a shipper exits: when the shipper goes away (exits, is
killed, is restarted) audit-ack keeps the FIFO open and waits for the next
one, which simply carries on writing to it; only a signal ends a FIFO run.
On stdin, end-of-file ends the run.

The FIFO's path is looked at every second. When it names another file than
the one open (the FIFO removed and made again by an operator, a tmpfiles
rule or a unit's RuntimeDirectory=, so that a restarted shipper writes to a
FIFO nobody read), audit-ack says so on stderr ("the FIFO PATH was removed
or replaced: now reading the new one ..."), opens the one at the path
(making it if the path is empty) and reads it; the old one is read on until
its last writer closes it, so no ack written to either is lost. A path that
now names something other than a FIFO stops audit-ack (exit 1).

A line that is not a valid ack (a torn line left by a shipper killed
mid-write) is reported and skipped: acks are cumulative, so the next one
covers it. An ack for another exporter is refused (exit 2): each exporter
needs its own FIFO and acker. An ack may name a "chain" (audit-verify
--chain-mark labels the batches and so the acks with the chain id): it is
taken only when that is this database's chain (-chain-id, else the
recordHash of its seq 1); an ack naming another chain is refused (exit 2,
naming the line): such acks are for a multi-chain consumer (audit-consume,
the Kafka fleet), and audit-ack commits one database's chain. The line
format and the protocol are lib/ack's package doc.

# Output

Nothing on stdout. The cursor is committed to the audit database:

	audit_export_cursor(exporter_name, last_seq, updated_at)

exactly as Declaragent writes it (an upsert that never moves last_seq
backwards), and in the same transaction the hash of the last shipped record
in auditpipe's own table auditpipe_cursor_hash, so that the next run's
audit-verify --from-cursor proves its first record links to what was
shipped. Commits are durable (synchronous=FULL), batched to at most one
every --commit-interval (default 50ms), with a final commit at end of
input and on SIGINT/SIGTERM. An ack is committed as soon as it is read
when the last commit is older than the interval (at a trickle: at once),
else when the interval is up; the acks already waiting are read first and
committed together (one fsync for a burst, or for what piled up during a
slow commit), so commits stay at most one per interval under load. A quarantined seq in an ack is reported on stderr; the
cursor moves past it (it is in the quarantine file, not lost).

Before each commit, in the same transaction, the ack is checked against the
database: the row at the ack's lastSeq must exist and carry the ack's
lastHash. If it does not, the acks come from a pipeline that read another
database (audit-read and audit-ack given different paths), or this database
was replaced or rewritten after its records were shipped. Either way moving
the cursor would claim that records were shipped that were not, so audit-ack
leaves the cursor where it is, names both hashes (or the missing seq) on
stderr and exits 3. Fix the path, or compare the database with what the
SIEM holds (audit-fetch | audit-verify), before starting it again.

# The database replaced

Before each commit audit-ack looks at the file at --db. When another file is
there (the database removed and recreated, or a copy renamed over it), it
says so on stderr and opens the new one: a cursor committed to the old file
would be lost to everyone reading the path, and a connection left on it
writes through the -wal the new file is read with. Each ack is then checked
against the new file as always, so a database replaced by another chain or
a shorter copy stops audit-ack with exit 3 and the cursor is not moved. The
head read for the metrics follows the path the same way.

A file with another database's -wal beside it (a copy put in place of a
database whose daemon was killed without a checkpoint; see audit-read) is
not opened for writing, at start or after a replacement: SQLite would apply
that -wal to it and corrupt a healthy file for good. audit-ack exits 5 and
names the -wal to move away once no process has the old database open.

# Acks that skip records

A shipper acks every record it was given, in order, so each ack starts
right after the one before it (or the committed cursor). Before the cursor
moves, in the commit's transaction, every ack is checked against the
database: no row the exporter ships may lie between the cursor and the
ack's firstSeq, and the ack's own range may hold no more such rows than its
count. An ack that skips rows (a forged ack, or one from a pipeline that
read with a filter audit-ack was not given) is refused: the acks before it
are committed, the cursor does not move over the gap, and audit-ack stops,
naming the ack's seqs, the cursor's seq and the rows never acked:

	audit-ack: commit cursor audit.db: the ack for splunk:prod covers seqs 200..210 (11 records) but the cursor is at seq 100:
	  99 rows it ships (no filter) between them, seqs 101..199, were never acked; the cursor is not moved over them (it stays at 100). ...

with exit 3, or exit 2 when the evidence fits a configuration mistake
rather than a forgery, which the message then names: the ack's own count
shows a filtered stream (fewer records than seqs) while audit-ack has no
filter; the acked rows are all of tenants (or kinds) that none of the
skipped rows has; or it is the exporter's very first ack (no cursor row)
and starts past the first row, the look of audit-read --from-seq.

An audit-ack killed (kill -9, OOM) loses the acks it had read and not yet
committed; their records were delivered. While audit-ship runs on, the
restarted audit-ack reads the shipper's next acks, which start past the
cursor. Each ack of audit-ship says what its run delivered ("since": the
first seq the run received, "sinceCount": the records acked in the run), so
such an ack is taken when the database confirms the claim: no row the
exporter ships between the cursor and since, and no more such rows from
since to the ack's lastSeq than sinceCount (a shipper restarted from an
older cursor, since behind the cursor, is fine). An ack without "since"
(written by hand, or by an older audit-ship), or one whose claim does not
hold, is refused as above; the message then says "its shipper's run began
after them (at seq S, its "since")" or "its shipper says it delivered N
records from seq S to L in its run ... so at least D of them were never
shipped". The checks catch acks that contradict the database; whoever can
write the FIFO can write a consistent lie, so keep it 0600.

Rows that do not exist are no gap (a database pruned of old rows, a seq
SQLite skipped). The gaps a pipeline makes on purpose are taken when
audit-ack is told what its audit-read selects, with the same flags:

	--from-seq N       the pipeline started at seq N on purpose (audit-read --from-seq N):
	                   rows before N may be skipped, from the very first ack on.
	                   This is the documented way to start an exporter's cursor at a seq.
	--tenant A,B       a per-tenant exporter (audit-read --tenant A,B): other tenants' rows may be skipped
	--kind K,L         a per-kind exporter (audit-read --kind K,L): rows of other kinds may be skipped

For example, a per-tenant exporter:

	audit-read --db audit.db --tenant acme --from-cursor splunk:acme --follow | audit-verify ... \
	  | audit-batch | audit-ship --kind splunk --exporter splunk:acme --acks /run/auditpipe/acme.fifo
	audit-ack --fifo /run/auditpipe/acme.fifo --db audit.db --exporter splunk:acme --tenant acme

--since and --until have no counterpart: a time-filtered read is a one-off
export, not an exporter whose cursor moves.

# One pipeline per exporter

audit-ack takes the exporter's ack lock before it reads anything: the file
PATH.EXPORTER.lock beside the database (or in --lock-dir), locked with a
Linux open-file-description lock, released by the kernel when the process
ends however it ends, with the holder's pid written in it. A second audit-ack
on the same database and exporter waits up to 5 s for the lock (saying who
holds it: two drains started together may each have won another stage's
lock, and the one refused at its audit-read lets go at once), then is
refused (exit 2), naming the holder's pid and the lock file. audit-read --from-cursor and audit-verify
--from-cursor take their own roles' locks on the same file, so a second
pipeline on the exporter is refused at its first stage, and the stages of
one pipeline run together. When the database's directory is read-only for
this user (the lock file cannot be made there), audit-ack stops with exit 2
and says to give --lock-dir (or AUDITPIPE_LOCK_DIR, which every stage reads
when it has no --lock-dir): the same directory for every stage of every
pipeline on that database, cron drains included. It never runs without the
lock.

# Signals

The first SIGINT or SIGTERM stops audit-ack within about a second whatever it
is doing (waiting on a FIFO nobody writes to, reading, committing): it
commits what it has taken, waiting at most one second for the database lock
(if the lock is held longer, it says the final commit was given up and where
the cursor stays: those records are shipped again, never lost), prints its
summary and exits 0. A second signal exits 130 at once.

# Flags

Each flag can also be set as AUDIT_ACK_<FLAG>, or in a file named by -config.

	-db PATH               audit database (must exist; the cursor tables are created if absent)
	-exporter NAME         exporter (cursor) name, e.g. splunk:prod
	-new-cursor            allow an -exporter NAME with no cursor while others exist (else exit 2, did-you-mean)
	-fifo PATH             FIFO to read; default stdin
	-commit-interval D     at most one commit per D (default 50ms; was 500ms); 0: every time acks were read
	-busy-timeout D        wait for the database write lock (default 10s)
	-from-seq N            the pipeline started at seq N on purpose: acks may skip the rows before it
	-tenant A,B            the pipeline ships only these tenants: acks may skip other tenants' rows
	-kind K,L              the pipeline ships only these kinds: acks may skip rows of other kinds
	-lock-dir DIR          directory of the exporter's lock file (default: $AUDITPIPE_LOCK_DIR, else the database's directory)
	-quiet                 no summary line
	-chain-id ID           the chain acks may name (default: the database's own, the recordHash of seq 1;
	                       give it when the first row is gone, as to audit-read)
	-metrics-listen ADDR   serve Prometheus metrics at http://ADDR/metrics (port 0: pick one, printed on stderr)
	-metrics-file PATH     write them to a node_exporter textfile (.prom), every 5s and at exit
	-metrics-exporter NAME exporter label (default -exporter)
	-metrics-linger D      keep serving this long after the end, for a last scrape

# Metrics

audit-ack knows both ends of the lag: it commits the cursor and has the
database open. With -metrics-listen or -metrics-file it reads the head of
the log (MAX(seq), on a read-only connection of its own) every second and
exposes, labelled exporter (-exporter) and vendor (the kind in the exporter
name, e.g. splunk for splunk:prod):

	declaragent_audit_export_last_seq   the committed cursor (set at start, then after every commit)
	declaragent_audit_last_seq          the head of the log
	auditpipe_export_lag_records        head - cursor (never below 0); the "gap > 10k" alert
	auditpipe_records_in_total          records covered by the acks taken

Without either flag nothing is polled. audit-ack writes nothing to stdout,
so it has no back-pressure counter.

# Threads

audit-ack runs Go code on one thread at a time (GOMAXPROCS 1) unless the
environment sets GOMAXPROCS. In a pipeline of five Go processes a second
thread per process bought no throughput on a 2-core host and cost CPU at
every hand-off between goroutines: the five stages together used about 10%
less CPU per record on one on a host busy with other work, less on a quiet
one (docs/perf.md, scripts/bench-ab.sh).
GOMAXPROCS=N gives audit-ack N threads.

# Exit codes

	0    end of input, or SIGINT/SIGTERM, after the final commit (or after saying it was given up)
	1    runtime failure (reading the FIFO; the FIFO's path replaced by something that is not a FIFO)
	2    usage; an ack for another exporter or naming another chain than the database's; the exporter's lock held by another pipeline (its pid named)
	     or not creatable (give --lock-dir); an ack skipping rows in a way that fits a missing --tenant/--kind/--from-seq
	3    an ack does not match the database (another database's hash, or a seq it lacks), or skips rows
	     the exporter ships (a gap after the cursor: both seqs and the rows named); cursor not moved over it
	5    database missing, not an audit database, or locked too long; or a -wal of another database beside it (named)

# Example

	audit-ack --fifo /run/auditpipe/acks.fifo --db /var/lib/declaragent/audit.db --exporter splunk:prod
*/
package main
