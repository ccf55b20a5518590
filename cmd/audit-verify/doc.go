/*
audit-verify is a filter that verifies the hash chain of audit record lines
and passes the verified lines through byte for byte.

Synopsis:

	audit-verify [flags] [FILE ...]

# Input and output

Input is record lines (docs/contract.md section 2), one JSON object per line, on
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
detail"; consecutive breaks of one kind are merged into one range. A
finding is reported (and counted in the metrics) by the first line that
does not continue it, or when the input pauses: nothing found waits for
the end of the stream, which under --follow never comes.

	hash_mismatch    error    the record or its hash was altered
	prev_link        error    prevHash does not link to the previous record (or the anchor, or a hole's last record)
	seq_gap          error    seqs missing: rows were deleted (the range is the missing seqs)
	equivocation     error    a different record at a seq verified before: two histories (see Duplicates)
	bad_json         error    the line is not strict JSON (or holds invalid UTF-8 or a NUL)
	bad_field        error    a field is missing or has the wrong type; a hash is not 64 lowercase hex
	truncated        error    the last line has no newline: the writer died mid-record
	bad_mark         error    a mark line on stdin that is malformed or out of place (see Marks)
	mark_ignored     warning  a mark line in a FILE: not trusted, not applied (see Marks)
	line_too_long    error    a record larger than --max-line: not evidence of tampering; exit 4, not 3
	duplicate        warning  records delivered again, proven identical (see Duplicates); dropped
	replay_unproven  warning  a replay that stopped before it could be proven; none of it passed on
	tombstone        notice   a row erased by Declaragent; passed on, counted
	unanchored       notice   the stream starts after seq 1 without an anchor; its first link is unchecked
	filtered         notice   a hole audit-read's filter made, checked by audit-read (see Marks); the
	                          first is printed, the others counted (summary, report, metric)

seq_regress (a seq went backwards) is no longer raised: a regress starts a
replay (see Duplicates). It stays in the metrics and alerts for old reports.

A record larger than --max-line cannot be checked without holding it: it is
reported as "record larger than --max-line (N bytes) (the record after seq
S): not evidence of tampering; raise --max-line", stops a fail-closed run
with exit 4, and never counts as a chain break.

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

A pipeline that starts at an exporter's cursor proves that its first record
links to what was shipped before:

	audit-read --db audit.db --from-cursor splunk:prod |
	  audit-verify [--db audit.db --from-cursor splunk:prod] | ...

audit-read reads the cursor's seq and the hash of the last shipped record
(stored by audit-ack), in one statement, and writes them as an anchor mark
before its first line; the first record must be seq+1 and link to that
hash. That is one fact both stages agree on, whatever acks land between
their starts. --from-cursor on audit-verify is optional; when given (with
--db) it must agree:

  - the mark names another exporter: usage error (exit 2) naming both flags;
  - our cursor is ahead of the mark (acks landed in between): the records in
    between are passed on again (at-least-once) and the record at our
    cursor's seq must carry its shipped hash; a different one is an
    equivocation (exit 3);
  - our cursor is behind the mark (moved back in between): noted on stderr,
    the mark anchors.

--anchor SEQ:HASH gives an anchor directly, checked against a mark the same
way. Without any anchor, a stream that does not start at seq 1 is reported
as unanchored (a notice).

Configuration mistakes are not tampering. With --from-cursor and no anchor
mark (an audit-read without --from-cursor, or an older one), when the
evidence fits a mistake audit-verify exits 2 before passing anything on,
saying what fits and which flag to fix:

	the input starts at genesis (seq 1) but --from-cursor splunk:prod is at seq 20000:
	  audit-read was not given the cursor; give audit-read the same --from-cursor splunk:prod
	the input starts at seq 501, right after exporter elastic:prod's cursor (seq 500), ...
	the input starts at seq N, past --from-cursor X at seq C, and links to the database's row N-1:
	  audit-read skipped seq C+1..N-1 (--from-seq?) ...
	audit-read starts after seq N (audit-read --from-seq N+1) but cursor X is at seq C:
	  seq C+1..N would never be shipped; give audit-read --from-cursor X instead of --from-seq

An input that starts at or below the cursor (an older audit-read that read
the cursor before acks landed) is a replay: its records up to the cursor
are proven against the cursor's shipped hash, dropped as duplicates, and
the rest passes. Exit 3 stays for evidence: a record that does not link, a
hash that does not match.

# Marks

A line that starts with {"mark": is a control line audit-read writes for
audit-verify (docs/design.md, "Marks"; one key order, exactly):

	{"mark":{"type":"anchor","source":"cursor","exporter":"splunk:prod","seq":41,"hash":"<64 hex>"}}
	{"mark":{"type":"anchor","source":"db-row","seq":149,"hash":"<64 hex>"}}
	{"mark":{"type":"skip","fromSeq":42,"toSeq":57,"hash":"<64 hex>","verified":16,"tombstones":0}}

source is cursor (the cursor and its shipped hash), cursor-row (the cursor
has no shipped hash: the database row's own record_hash, which proves
less) or db-row (--from-seq: the row before). A skip says audit-read left
seq fromSeq..toSeq out (--tenant, --kind, --since, --until, or a seq bound
in file mode) after checking their chain itself; the next record must link
to hash. A skip that found a break carries it (breaks, breakSeq,
breakReason, breakDetail) and audit-verify reports it as that break, with
its seq: a row altered among those left out is still a true finding. The
hole itself is a notice (filtered), never an error.

A mark has the trust of the stream it arrives in. On stdin it comes from
audit-read on the same pipe, and is applied. In a FILE argument (forensic
replay of an export, which never holds marks: audit-batch and audit-ship
drop them, and audit-read writes none into a file) it is a mark_ignored
warning and is not applied: the records verify on their own, and a hole it
claims is still a seq_gap. To replay a saved audit-read output that you
trust, give it on stdin. Marks are never passed
on.

# Many chains

A fleet ships many databases (chains) through one Kafka topic, and
audit-consume writes their record lines interleaved, each run of one
chain's records after a chain mark naming it (issue 15; lib/chain):

	{"mark":{"type":"chain","chain":"<id>"}}
	{"mark":{"type":"chain","chain":"<id>","seq":41,"hash":"<64 hex>"}}

A chain id is the recordHash of the chain's first record (or an override):
1 to 128 bytes of [A-Za-z0-9._:-]. A stdin that starts with a chain mark is
verified chain by chain, each with its own state (a Verifier with a
-chain-window window; about 3.8 KB a chain with the default 64, see
BenchmarkMemoryPerChain): a chain first seen is anchored by its chain
mark's seq and hash (audit-consume's stored anchor: the last seq delivered
and its recordHash), or else by the genesis rule (its first record must be
seq 1 with an empty prevHash). A chain first seen in the middle with no
anchor is held, not trusted. A chain that comes again with an anchor (the
consumer started over after a rebalance) is proven by the replay that
follows when the anchor is at or below what was verified, and resumes at
the anchor when it is past it (another consumer verified and delivered the
records between).

In fail-closed mode a chain that breaks is held on its own: none of its
later records are passed on, and the other chains keep flowing. Its finding
names the chain, the seq and the fix:

	audit-verify: error hash_mismatch: chain <id> seq 17 line 67: recordHash 3f1c… does not match the record (computed 7dd5…)
	audit-verify: error chain_held: chain <id> seq 17 line 67: held at seq 17 (hash_mismatch at seq 17): none of
	  its later records are passed on; the other chains go on. Fix: find out what changed the chain at seq 17 on the
	  host it comes from (audit-verify --db on its database); the chain stays held in every run until its records
	  verify, and nothing of it is lost: the consumer keeps its partition's committed offset at its first record not delivered

With -holds FIFO (audit-consume's -acks FIFO) audit-verify also writes a
hold line {"hold":{"chain":"<id>","seq":17,"reason":"hash_mismatch"}} there,
so the consumer stops counting the held chain's records in flight (they will
never be acked) while keeping the partition's committed offset at the
chain's first record not delivered. At the end the exit code is 3 when any
chain was held (or, in report mode, broke), after every other chain's
records were passed on: "chain verification failed: 1 of 3 chains held; the
other chains' records were passed on (first: ...)". The JSON report has a
"chains" array: each chain's records, verified, lastSeq, headHash, held,
heldSeq, heldReason and refused records. -anchor and -from-cursor are for
one chain: with a stream of many they are a usage error (exit 2). A chain
mark after records, or naming another chain in one chain's stream, is a
bad_mark. The summary line says "N records in M chains (H held)".

Metrics: a held chain is counted in auditpipe_verify_breaks_total with
reason="chain_held" (a bounded label); the chain itself is named in the
finding line and the report, never in a metric label: chain ids are as many
as the hosts that ever shipped (or an attacker who can write to the topic
cares to mint), and a label per chain would be an unbounded number of
series. Alert on increase(auditpipe_verify_breaks_total{reason="chain_held"}[5m]) > 0
and read the chain from the log.

Downstream, audit-verify writes a chain mark (without anchor) before each
run of another chain's records. With one chain, it writes one chain mark
before the first record only when asked (--chain-mark) and the chain is
known: the anchor mark named it, or the read starts at the genesis (the
first record's recordHash is the chain id). audit-ship --kind kafka keys
the records by it, audit-batch and audit-ship label batches, SIEM events
and acks with it (audit-ack takes acks naming its database's own chain). By
default what audit-verify writes holds records only, so that
audit-verify | gzip > export.gz is an export audit-read can replay.
audit-batch and seal drop marks (lib/framing.IsMark); audit-ship reads the
leading ones for the chain id, then drops them.

# Duplicates

At-least-once delivery means an archive or a SIEM copy can hold a batch
twice. A seq at or below the head starts a replay: the replayed records
must each verify and link to the replayed record before them, and the one
that reaches the head seq must have the head's recordHash. Collision
resistance then proves the whole run identical to what was verified
before, at any length, in constant memory. The run is one duplicate
warning (counted; dropped). On the way, the last --window records are
checked one by one, so a different record there is found at once. A
different record anywhere in the run (its hash, its link, or the head's
hash) is an equivocation or hash_mismatch error; a run that stops before
the head (end of input, or another regress) is a replay_unproven warning
naming the range; none of it was passed on.

# Flags

Each flag can also be set through the environment as AUDIT_VERIFY_<FLAG>
(upper case, dashes as underscores), or in a file named by -config.

	-mode fail-closed|report   see Modes (default fail-closed)
	-anchor SEQ:HASH           trusted anchor
	-db PATH                   audit database for -from-cursor
	-new-cursor                allow a -from-cursor NAME that has no cursor while others do (else exit 2, did-you-mean)
	-from-cursor NAME          anchor on that exporter's cursor (and take its verify lock, waiting up to 5 s: one pipeline per exporter, see audit-read)
	-lock-dir DIR              directory of the exporter's lock file (default: the database's directory)
	-report FILE               write a JSON report (written atomically, mode 0600)
	-max-line N                maximum line length in bytes (default 64 MiB, ndjson.DefaultMaxLine)
	-window N                  recent records proven one by one in a replay (default 4096); longer
	                           replays are proven as a run (see Duplicates)
	-duplicates drop|pass      drop (default): duplicates are counted, not passed on; pass: pass on
	                           those the window proves record by record (a longer run is only proven
	                           when it reaches the head, after it went by, so it is dropped)
	-chain-window N            many chains: each chain's duplicate window (default 64; 40 bytes an entry)
	-max-chains N              many chains: chains verified at once (default 100000); a chain first seen
	                           beyond it is held (chain_held, named once), not passed on
	-holds PATH                many chains: write a hold line for each chain held to this FIFO or file
	                           (audit-consume's -acks FIFO)
	-chain-mark                one chain: write a chain mark naming the chain (audit-read's anchor's, or
	                           seq 1's recordHash) before the first record: audit-ship --kind kafka keys by
	                           it, SIEM events and acks are labelled with it; off by default
	-quiet                     no summary line at exit

At exit a summary goes to stderr: records, seq range, head hash, counts per
tenant, fast and slow path counts, records left out in holes, duplicates
dropped, breaks by reason, and records/s. The JSON report has the same, and
holes, filtered, duplicates, unproven and tooLarge counts.

# Metrics

	-metrics-listen ADDR    serve Prometheus metrics at http://ADDR/metrics (port 0: pick one, printed on stderr)
	-metrics-file PATH      write them to a node_exporter textfile (.prom), atomically, every 5s and at exit
	-metrics-exporter NAME  exporter label (default -from-cursor)
	-metrics-linger D       keep serving this long after the work is done, for a last scrape

Every series carries exporter and vendor when known (vendor from an
exporter name like splunk:prod). audit-verify exposes:

	auditpipe_verify_breaks_total{reason}          findings by reason code (the table above); every reason's
	                                               series exists from the start, at 0. filtered counts holes,
	                                               duplicate and replay_unproven records; line_too_long is
	                                               not a chain break (alert AuditRecordTooLarge)
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

# Threads

audit-verify runs Go code on one thread at a time (GOMAXPROCS 1) unless the
environment sets GOMAXPROCS. In a pipeline of five Go processes a second
thread per process bought no throughput on a 2-core host and cost CPU at
every hand-off between goroutines: the five stages together used about 10%
less CPU per record on one on a host busy with other work, less on a quiet
one (docs/perf.md, scripts/bench-ab.sh).
GOMAXPROCS=N gives audit-verify N threads.

# Exit codes

	0    the chain verified (notices and warnings do not fail it: holes, duplicates, tombstones)
	1    runtime failure (I/O)
	2    usage; a configuration mistake seen in the input (see Anchors), nothing passed on;
	     or the exporter's verify lock is held by another pipeline (its pid named) or cannot be made (give -lock-dir)
	3    verification failed: evidence of tampering or corruption; with many chains, a chain was
	     held (the other chains' records were passed on)
	4    an input file could not be opened or decompressed; a record larger than --max-line
	5    the database for -from-cursor could not be read
	141  stdout closed by the next stage (quiet)

The first SIGINT or SIGTERM stops reading; what was passed on is verified, and
the summary is printed. Exit 0.

# Example

	audit-read --db audit.db | audit-verify --report /var/log/auditpipe/verify.json >/dev/null
*/
package main
