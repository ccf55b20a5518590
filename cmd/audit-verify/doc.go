/*
audit-verify is a filter that verifies the hash chain of audit record lines
and passes the verified lines through byte for byte.

Synopsis:

	audit-verify [flags] [FILE ...]

# Input and output

Input is record lines (CONTRACTS.md section 2), one JSON object per line, on
stdin or in the FILEs named (plain, gzip or zstd, detected by magic bytes).
Output on stdout is every verified line, unchanged (a CRLF line ending is
written as LF). Diagnostics go to stderr, each naming the seq and input line.

For each record, recordHash must equal SHA-256(prevHash + "\n" +
canonical(record)). The record's bytes are hashed as they stand first (the
fast path: records read from the database are already canonical); only when
that does not match is the record canonicalised the way ECMAScript's
JSON.stringify would write it (the slow path, for records re-serialised by a
SIEM). A line in audit-read's exact layout has the fields around the record
checked strictly and the record itself checked by its hash alone: bytes
that hash to recordHash are the very bytes the writer hashed, so parsing
them again would prove nothing. A record that does not verify is parsed
strictly before it is reported, so its finding still says bad_json and the
byte column when that is what is wrong. prevHash must equal the previous record's recordHash, seqs must be
contiguous, and the first record must be the genesis (seq 1, prevHash "")
or link to an anchor.

# Findings

Every break is reported on stderr as "SEVERITY REASON: seq A..B lines C..D:
detail"; consecutive breaks of one kind are merged into one range:

	hash_mismatch  error    the record or its hash was altered
	prev_link      error    prevHash does not link to the previous record (or the anchor)
	seq_gap        error    seqs missing: rows were deleted (the range is the missing seqs)
	seq_regress    error    seq went backwards to a seq not seen recently
	equivocation   error    the same seq twice with different hashes: two histories
	bad_json       error    the line is not strict JSON (or holds invalid UTF-8 or a NUL)
	bad_field      error    a field is missing or has the wrong type; a hash is not 64 lowercase hex
	truncated      error    the last line has no newline: the writer died mid-record
	line_too_long  error    the line is longer than --max-line
	duplicate      warning  the same seq and hash again (an at-least-once replay); dropped, not passed twice
	tombstone      notice   a row erased by Declaragent; passed on, counted
	unanchored     notice   the stream starts after seq 1 without an anchor; its first link is unchecked

A tombstone is a row whose record_json Declaragent replaced with
{"kind":"erased",...} while keeping both hashes, so by construction its hash
no longer matches. It is not called tampering, but know what it can hide:
anyone with write access to the database can overwrite any record with a
forged tombstone, and the chain check cannot tell a legitimate erasure from a
cover-up, nor recover what was there. Only a copy shipped before the erasure
(in the SIEM) or a signed checkpoint can. Count tombstones and alert on them.

# Modes

--mode fail-closed (default): at the first error, stop passing records on,
report, and exit 3. Every line written before it is verified.

--mode report: go on to the end and report every break. Records whose own
hash verifies are passed on even after a gap or a broken link (so the intact
rest of the log still ships); records that fail their hash, duplicates and
unparseable lines are not. Exit 3 at the end if any error was found.

# Anchors

A pipeline that starts at an exporter's cursor should prove that its first
record links to what was shipped before:

	audit-read --db audit.db --from-cursor splunk:prod |
	  audit-verify --db audit.db --from-cursor splunk:prod | ...

reads the cursor's seq and the hash of the last shipped record (stored by
audit-ack) and requires the first record to be seq+1 linking to that hash.
--anchor SEQ:HASH gives the anchor directly. Without an anchor, a stream
that does not start at seq 1 is reported as unanchored (a notice).

# Flags

Each flag can also be set through the environment as AUDIT_VERIFY_<FLAG>
(upper case, dashes as underscores), or in a file named by -config.

	-mode fail-closed|report   see Modes (default fail-closed)
	-anchor SEQ:HASH           trusted anchor
	-db PATH                   audit database for -from-cursor
	-from-cursor NAME          anchor on that exporter's cursor
	-report FILE               write a JSON report (written atomically, mode 0600)
	-max-line N                maximum line length in bytes (default 64 MiB)
	-window N                  recent records remembered for duplicate detection (default 4096)
	-quiet                     no summary line at exit

At exit a summary goes to stderr: records, seq range, head hash, counts per
tenant, fast and slow path counts, breaks by reason, and records/s.

# Metrics

	-metrics-listen ADDR    serve Prometheus metrics at http://ADDR/metrics (port 0: pick one, printed on stderr)
	-metrics-file PATH      write them to a node_exporter textfile (.prom), atomically, every 5s and at exit
	-metrics-exporter NAME  exporter label (default -from-cursor)
	-metrics-linger D       keep serving this long after the work is done, for a last scrape

Every series carries exporter and vendor when known (vendor from an
exporter name like splunk:prod). audit-verify exposes:

	auditpipe_verify_breaks_total{reason}          findings by reason code (the table above); every reason's
	                                               series exists from the start, at 0
	declaragent_audit_backpressure_paused_total    writes to stdout that blocked > 100ms
	auditpipe_backpressure_paused_seconds_total    time spent in those writes
	auditpipe_backpressure_blocked_seconds         how long the write in progress has been blocked
	auditpipe_records_in_total, auditpipe_bytes_in_total     lines read; bytes without the newline
	auditpipe_records_out_total, auditpipe_bytes_out_total   verified lines passed on
	auditpipe_stage_last_seq                       seq of the last record passed on

In fail-closed mode audit-verify exits at the first break, usually before
the next scrape: give -metrics-linger (longer than the scrape interval) so
the break is scraped (stdout is closed before the linger, so the stages
after it finish at once), or -metrics-file, which is written at exit. The exit
code 3 is the other signal to alert on.

# Progress

When stderr is a terminal (and without -quiet), a progress line is redrawn
in place every half second: records, records/s, the current seq and, with
-db, the head of the log and the time left. It is drawn only when
audit-verify reads files or a redirected file: fed by a pipe, the stage
before it (audit-read) draws the line, and two lines would flicker over
each other. Nothing of it is written when stderr is not a terminal.

# Exit codes

	0    the chain verified (notices and warnings do not fail it)
	1    runtime failure (I/O)
	2    usage
	3    verification failed
	4    an input file could not be opened or decompressed
	5    the database for -from-cursor could not be read
	141  stdout closed by the next stage (quiet)

The first SIGINT or SIGTERM stops reading; what was passed on is verified, and
the summary is printed. Exit 0.

# Example

	audit-read --db audit.db | audit-verify --report /var/log/auditpipe/verify.json >/dev/null
*/
package main
