/*
audit-batch is a filter that groups audit record lines into batches for
audit-ship: a header line, then the batch's record lines byte for byte.

Synopsis:

	audit-batch [flags] < records.ndjson > batches.ndjson

# Input and output

Input on stdin is record lines (docs/contract.md section 2), normally the output
of audit-verify; plain, gzip or zstd (detected by magic bytes). audit-batch
does not verify the chain. It needs each record's seq for the header, which
it reads cheaply: a line that starts {"seq":N, (N a non-negative integer)
and ends with } is taken as it is; any other line must parse as a JSON
object with an integer "seq".

Output on stdout is batches, and nothing else:

	{"batch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250}}
	{"seq":40,...}
	{"seq":41,...}
	{"seq":42,...}

A batch is a header followed by exactly count record lines. Record lines are
the input lines unchanged (a CRLF input line is written with LF; blank lines
are dropped). Mark lines (a line starting {"mark":, audit-read's control
lines for audit-verify, which audit-verify normally consumes) are dropped
wherever they are: never batched, never an error, counted in the summary
("N mark lines dropped") and in auditpipe_marks_dropped_total. In the header, id counts batches from 1 (per process); count
is the number of record lines; bytes is the sum of their lengths without
their "\n"; firstSeq and lastSeq are the seqs of the first and last record
line; intervalMs is the adaptive interval (below) that was in force while
the batch was open. Within a batch seqs never go down: a record whose seq is
lower than the previous record's (which audit-verify would have refused)
closes the batch before it, so firstSeq <= lastSeq always holds. The header
format is package lib/framing (AppendHeader, ParseHeader).

A chain mark ({"mark":{"type":"chain","chain":"<id>",...}}: audit-verify
writes one before each run of a chain's records on the central side of a
Kafka fleet, and with --chain-mark on a host) is dropped too, but it names
the chain of the records after it: a batch holds one chain's records (a
chain mark naming another chain closes the open batch, counted as reason
"chain"), and every header after it ends in "chain":

	{"batch":{"id":18,"count":2,"bytes":1020,"firstSeq":7,"lastSeq":8,"intervalMs":250,"chain":"3f2a…"}}

audit-ship labels the records (and their SIEM events) and the acks with it.
Input without chain marks gives headers without "chain", as before; an
anchor mark's "chain" does not name batches. A chain mark that does not
parse stops audit-batch (exit 4, naming the line): its records must not be
taken for the previous chain's.

stdout is flushed after every batch, so a batch never waits in a buffer while
the next one fills. Diagnostics go to stderr: at exit, unless -quiet, one
summary line (records, batches and why each closed, the final interval).

Checkpoint lines (a line starting {"checkpoint":, from audit-checkpoint seal
--emit-checkpoints) are carried, byte for byte, in the batch they fall in,
counted in its count and bytes (and in the summary's records) like a record
line, at the seq of the record before them, so they never close a batch by
seq (a batch that starts with one has firstSeq 0, or the seq of the record
before it). audit-ship sends them as checkpoint events.

# When a batch closes

  - Full by count: it holds -max-count records.
  - Full by bytes: the next record would take its bytes over -max-bytes (the
    batch closes before it), or it has reached -max-bytes exactly. A single
    record longer than -max-bytes goes alone in its own batch; that is not
    an error here (audit-ship and the SIEM decide what to do with it).
  - By age: its first record has waited the current interval. The age timer
    runs while stdin is idle: a record never waits for the next one to be
    read.
  - At the end of the input, on a stop (SIGINT/SIGTERM), or before an input
    error is reported: the batch in progress is written first.

# The adaptive interval

This is Declaragent's "the loop widens intervalMs under steady load and
collapses it back when the queue drains", made exact. The interval starts at
-min-interval and stays within [-min-interval, -max-interval]:

  - When a batch closes full (count or bytes), input is arriving faster than
    batches fill: the interval doubles, capped at -max-interval. Batches stay
    full and a burst that thins out still gets fuller batches, sent less
    often.
  - When a batch closes by age holding less than half of -max-count records
    and less than half of -max-bytes, traffic is light: the interval
    collapses to -min-interval, for low latency.
  - When the input queue has drained — audit-batch found no input waiting
    and none has arrived for -min-interval — the interval collapses to
    -min-interval; the batch in progress then closes as soon as its first
    record is -min-interval old, instead of waiting out a wide interval.
  - A batch that closes by age at least half full, at a seq drop, or at the
    end leaves the interval as it is.

The interval only ever shrinks while a batch is open, so no record waits
longer than -max-interval for its batch to close, back-pressure aside: while
audit-batch is blocked writing a batch to a full stdout (audit-ship is
behind), lines read meanwhile wait in the hand-off buffer, and their wait
counts from when the batcher takes them. The current value is written into every header
and is what the declaragent_audit_batch_interval_ms gauge reports (see
Metrics); an embedding program gets the *Batcher through auditbatch.RunWith's
Options.Batcher and reads Batcher.Interval (and Batcher.Stats) from any
goroutine. A value stuck at -max-interval means sustained load.

# SIEM presets

-siem sets -max-count and -max-bytes for the SIEM that audit-ship sends to.
An explicit -max-count or -max-bytes (flag, environment or config file)
overrides the preset, but a value above the SIEM's hard per-request limit is
a usage error (exit 2). Bytes are record line bytes before compression.
The figures come from the sink declarations (lib/sink/<kind>/declare.go,
through lib/batcher); go test ./cmd/audit-batch fails, printing the new
table, when this one differs from them.

	-siem     max-count  max-bytes   hard limit
	(none)    500        800000      none
	splunk    500        800000      bytes <= 1000000 (Splunk Cloud's HEC request limit of 1 MB)
	elastic   10000      5000000     bytes <= 104857600 (Elasticsearch's default http.max_content_length of 100 MiB)
	datadog   1000       4000000     count <= 1000, bytes <= 5000000 (Datadog Logs' request limit of 1000 logs and 5 MB uncompressed)
	file      10000      8388608     none
	kafka     2000       2000000     none

Why these figures. Splunk: HEC wraps each record as {"time":..,"host":..,
"source":..,"sourcetype":..,"index":..,"event":<record>,"fields":{..}}, a
few hundred bytes more than the record line; 800000 bytes of record lines
plus up to 400 bytes of envelope for each of 500 records stays within 1 MB.
Datadog: 1000 is the API's maximum array size; 4 MB leaves 1 MB (20%) for
each log's attributes (ddsource, ddtags, service, hostname) and for escaping
when a record travels as a JSON string. Elastic: Elastic recommends bulk
requests of 5-15 MB; 5 MB of records plus a ~60-byte action line per
document lands in that range. file: no request limit; larger batches mean
fewer writes. kafka: one batch is one wait for Kafka's acks (audit-ship
sends one at a time, so each chain stays in seq order in its partition),
while the client splits it into produce requests of its own (1 MB each).
Measured into a 3-broker cluster (scripts/bench.sh N kafka), 1000 to 10000
records cost the same CPU per record within the noise, while audit-ship's
peak memory grew from 57 to 153 MiB; 2000 keeps it near 75 MiB. Without -siem the defaults fit every
supported SIEM.

# Flags

Each flag can also be set through the environment as AUDIT_BATCH_<FLAG>
(upper case, dashes as underscores), or in a file named by -config. A
mistyped flag, an AUDIT_BATCH_* variable that names no flag, or a bad -config
line is one line on stderr naming the fix (did-you-mean; -h lists the flags),
exit 2.

	-siem NAME          preset caps: splunk, elastic, datadog, file or kafka  AUDIT_BATCH_SIEM
	-max-count N        records per batch (default 500, or the preset)  AUDIT_BATCH_MAX_COUNT
	-max-bytes N        record bytes per batch (default 800000, or the preset)  AUDIT_BATCH_MAX_BYTES
	-min-interval D     interval after a collapse (default 50ms, at least 1ms)  AUDIT_BATCH_MIN_INTERVAL
	-max-interval D     widest interval, the longest a record waits (default 5s,
	                    Declaragent's intervalMs: 5000)                 AUDIT_BATCH_MAX_INTERVAL
	-max-line N         maximum input line length (default 64 MiB)      AUDIT_BATCH_MAX_LINE
	-agent-config FILE  Declaragent agent.yaml, as audit-ship's: audit.export.kind is
	                    -siem, batchSize -max-count, intervalMs -max-interval
	                    (flags and env vars win; a kind other than -siem's is an error)
	                                                                    AUDIT_BATCH_AGENT_CONFIG
	-quiet              no summary line at exit                         AUDIT_BATCH_QUIET
	-metrics-listen ADDR    serve Prometheus metrics at http://ADDR/metrics  AUDIT_BATCH_METRICS_LISTEN
	-metrics-file PATH      node_exporter textfile, every 5s and at exit     AUDIT_BATCH_METRICS_FILE
	-metrics-exporter NAME  exporter label of the metrics                    AUDIT_BATCH_METRICS_EXPORTER
	-metrics-linger D       keep serving this long after the end             AUDIT_BATCH_METRICS_LINGER
	-config FILE        flag value pairs, one per line                  AUDIT_BATCH_CONFIG

# Metrics

With -metrics-listen ADDR (port 0 picks one, printed on stderr) audit-batch
serves Prometheus metrics at http://ADDR/metrics; with -metrics-file PATH it
writes them to a node_exporter textfile (atomically, every 5s and at exit).
Series carry exporter (-metrics-exporter) and vendor (-siem, else the kind
in the exporter name) when known.

	declaragent_audit_batch_interval_ms            the adaptive interval now (the contract name, "ms" and all)
	auditpipe_batch_max_interval_ms                -max-interval: the interval at this value means sustained load
	auditpipe_batches_total                        batches written
	auditpipe_batches_closed_total{reason}         by why they closed: full, age, seq, flush
	declaragent_audit_backpressure_paused_total    writes to stdout that blocked > 100ms (audit-ship is behind)
	auditpipe_backpressure_paused_seconds_total    time spent in those writes
	auditpipe_backpressure_blocked_seconds         how long the write in progress has been blocked
	auditpipe_records_in_total, auditpipe_bytes_in_total     record lines taken in; bytes without the newline
	auditpipe_records_out_total, auditpipe_bytes_out_total   record lines written in closed batches

The alert "interval stuck at max" is
declaragent_audit_batch_interval_ms >= auditpipe_batch_max_interval_ms held
for a while (examples/prometheus/alerts.yml).

# Input errors

A line that is not a record (not JSON, no integer seq, a negative seq), a
line longer than -max-line, a line with a NUL byte or invalid UTF-8, and a
last line without "\n" (the writer died mid-line) all stop audit-batch: every
record before the bad line is written out in complete batches first, the
bad line is not, and the error names its line number, e.g.

	audit-batch: line 9: truncated record (no newline at end of input)

with exit code 4. Nothing valid before a bad line is lost, and the records
from it on are shipped by the next run, from the cursor.

# Threads

audit-batch runs Go code on one thread at a time (GOMAXPROCS 1) unless the
environment sets GOMAXPROCS. In a pipeline of five Go processes a second
thread per process bought no throughput on a 2-core host and cost CPU at
every hand-off between goroutines: the five stages together used about 10%
less CPU per record on one on a host busy with other work, less on a quiet
one (docs/perf.md, scripts/bench-ab.sh).
GOMAXPROCS=N gives audit-batch N threads.

# Exit codes

The table shared by every auditpipe binary (package lib/exitcode; also
printed by audit-batch -h):

	0    ok (also a clean stop on the first SIGINT/SIGTERM)
	1    runtime failure (I/O, network, internal error)
	2    usage: bad flags, config file or secret reference
	3    verification failed: the chain is broken (tampering or corruption)
	4    malformed input: bad JSON, bad field, line too long, truncated last line
	5    database: missing, not an audit database, corrupt, or locked too long
	6    paused: consecutive non-retryable SIEM failures; fix, then restart
	7    SIEM configuration rejected (401/403, index not allowed): fix, then restart
	8    incomplete: acks not handed to audit-ack, or gave up on a failing SIEM
	     (--give-up-after); nothing lost, the next run re-sends from the cursor
	130  forced stop by a second signal
	141  downstream closed the pipe (quiet)

audit-batch itself exits 0, 1 (read error, corrupt gzip/zstd), 2, 4, 130 or
141.

# Signals

The first SIGINT or SIGTERM is a clean stop: audit-batch stops reading
(also a read waiting on a quiet input), batches the complete lines it has
already read, writes them with the batch in progress, and exits 0 with its
summary. The upstream stage may still be writing; what it wrote after the
stop is not lost, since nothing is acknowledged before audit-ship delivers
it, and the next run starts again from the cursor. If stdout is blocked
(audit-ship not reading: back-pressure) the stop gives the downstream half a
second to take what is written, then stops between lines (after one more
half second at most to finish a line it began). A downstream that stopped
first (Ctrl-C reaches the whole pipeline) is part of the clean stop: exit 0,
not 141. A second signal exits at once with 130.

When audit-ship (stdout's reader) exits, audit-batch exits 141 at once,
quietly, also while its input is quiet: the stages before it then see their
own output close in turn, so a pipeline whose last stage stopped (exit 6, 7
or 3 upstream) ends within milliseconds and the service manager sees it.
This is the same for every auditpipe stage (package lib/cli).

# Memory

Bounded by about two batches whatever the input: the batch being filled
(-max-bytes, or one line of up to -max-line), two 256 KiB hand-off buffers
between the reading goroutine and the batcher (each may hold one longer
line), the reader's 1 MiB read buffer and the 256 KiB output buffer.

# Example

	DB=/var/lib/declaragent/audit.db
	audit-read --db $DB --follow --from-cursor splunk:prod |
	  audit-verify --db $DB --from-cursor splunk:prod |
	  audit-batch --siem splunk |
	  audit-ship --kind splunk --url https://http-inputs-acme.splunkcloud.com \
	    --token env:SPLUNK_HEC_TOKEN --exporter splunk:prod --acks /run/auditpipe/acks.fifo

(audit-ack, reading /run/auditpipe/acks.fifo, commits the cursor.) To see
the framing: audit-batch --max-count 2 < records.ndjson | head
*/
package main
