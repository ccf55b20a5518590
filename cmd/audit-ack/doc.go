/*
audit-ack commits an exporter's cursor from the acks audit-ship writes.

Synopsis:

	audit-ack --db PATH --exporter NAME [--fifo PATH] [--commit-interval D]

# Input

Ack lines (see audit-ship) from --fifo, or from stdin without it. The FIFO is
created (mode 0600) if absent and opened read-write, so it never reaches
end-of-file when a shipper exits: a restarted shipper simply carries on
writing to it. On stdin, end-of-file ends the run.

A line that is not a valid ack (a torn line left by a shipper killed
mid-write) is reported and skipped: acks are cumulative, so the next one
covers it. An ack for another exporter is refused (exit 2): each exporter
needs its own FIFO and acker.

# Output

Nothing on stdout. The cursor is committed to the audit database:

	audit_export_cursor(exporter_name, last_seq, updated_at)

exactly as Declaragent writes it (an upsert that never moves last_seq
backwards), and in the same transaction the hash of the last shipped record
in auditpipe's own table auditpipe_cursor_hash, so that the next run's
audit-verify --from-cursor proves its first record links to what was
shipped. Commits are durable (synchronous=FULL), batched to at most one
every --commit-interval, with a final commit at end of input and on
SIGINT/SIGTERM. A quarantined seq in an ack is reported on stderr; the
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

# Flags

Each flag can also be set as AUDIT_ACK_<FLAG>, or in a file named by -config.

	-db PATH               audit database (must exist; the cursor tables are created if absent)
	-exporter NAME         exporter (cursor) name, e.g. splunk:prod
	-new-cursor            allow an -exporter NAME with no cursor while others exist (else exit 2, did-you-mean)
	-fifo PATH             FIFO to read; default stdin
	-commit-interval D     at most one commit per D (default 500ms)
	-busy-timeout D        wait for the database write lock (default 10s)
	-quiet                 no summary line
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

# Exit codes

	0    end of input, or SIGINT/SIGTERM, after the final commit
	1    runtime failure (reading the FIFO)
	2    usage, or an ack for another exporter
	3    an ack does not match the database (another database's hash, or a seq it lacks); cursor not moved
	5    database missing, not an audit database, or locked too long

# Example

	audit-ack --fifo /run/auditpipe/acks.fifo --db /var/lib/declaragent/audit.db --exporter splunk:prod
*/
package main
