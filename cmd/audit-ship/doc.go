/*
audit-ship delivers audit records to a SIEM and reports each delivered batch
as an ack line, so that audit-ack can commit the exporter's cursor.

Synopsis:

	audit-ship --kind splunk --url URL --token REF [--index NAME|TEMPLATE] [flags] < batches
	audit-ship --kind elastic --url URL [--api-key REF | --username U --password REF | --bearer REF]
	           [--index NAME|TEMPLATE] [flags] < batches
	audit-ship --kind datadog --api-key REF [--site SITE] [--tags TAGS|TEMPLATE] [flags] < batches
	audit-ship --kind file --path FILE|DIR [--dir] [--gzip] [flags] < batches
	audit-ship --kind kafka --brokers HOST:PORT[,...] [--topic NAME|TEMPLATE] [--chain-id ID]
	           [--tls] [--sasl MECH --username U --password REF] [flags] < records
	audit-ship --agent-config agent.yaml [flags] < batches

REF is a secret reference: env:NAME, file:PATH or exec:COMMAND (or
Declaragent's ${secret:env:NAME} spelling of them); never the secret.

# Input

audit-batch's framing (a header line {"batch":{...,"count":N,...}} followed by
exactly N record lines), or plain record lines, which audit-ship then batches
itself with the --kind's preset caps, exactly as audit-batch --siem KIND
would (--batch-size and --batch-interval, or agent.yaml's batchSize and
intervalMs, set its --max-count and --max-interval). So both of these work:

	audit-read ... | audit-verify | audit-batch --siem splunk | audit-ship --kind splunk ...
	audit-read ... | audit-verify | audit-ship --kind splunk ...

With audit-batch in the pipe, audit-batch's own flags decide the batches;
--batch-size and --batch-interval, and agent.yaml's batchSize and intervalMs,
then do not apply, and audit-ship says so on stderr, naming the file's lines:
give audit-batch the same file (audit-batch --agent-config agent.yaml) to
batch as agent.yaml says.

audit-ship reads the fields around each record (seq, ts, tenantId, kind,
prevHash, recordHash) strictly and carries the record object as opaque
bytes: proving the record is audit-verify's job, so put it before
audit-ship. A line that is not in audit-read's exact layout is parsed in
full. A line whose fields cannot be read is an input error (exit code 4).

Mark lines (a line starting {"mark":, audit-read's control lines for
audit-verify) are dropped wherever they are: never shipped, never part of a
batch's count, counted in the summary and in auditpipe_marks_dropped_total.

Checkpoint lines (a line starting {"checkpoint":, from audit-checkpoint
seal --emit-checkpoints; framed in a batch by audit-batch, or plain among
the records) are sent as checkpoint events of their own kind (splunk:
sourcetype <--sourcetype>:checkpoint; elastic and datadog: type
"checkpoint"; docs/siems/*.md), retried, split and quarantined like
records. A batch's ack covers its records only; a batch of checkpoint
lines alone has none; acks stay in batch order, so the cursor passes a
record only when every checkpoint line before it was delivered. The file
and kafka sinks refuse them as poison: "the checkpoint line of size N was
refused: a checkpoint line, not a record: ... run audit-checkpoint seal
without --emit-checkpoints before a file audit-ship" (exit 6), or with
--quarantine set aside in the quarantine file like a record. A checkpoint line whose note has no size is an input error
(exit 4, "line N: checkpoint line: ...").

A header whose records do not all arrive (the stage before stopped mid-batch)
is not sent: those records were never acked, so they are read again from the
cursor on the next start. Exit 4.

# Output: acks

For every batch that was delivered completely, audit-ship writes one line to
--acks, strictly in seq order even with several requests in flight:

	{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"<64 hex>","count":3,"since":11,"sinceCount":32,"quarantined":[]}}

An ack means every record from firstSeq to lastSeq was delivered, or was
rejected by the SIEM as poison and written to --quarantine (its seq is then
listed). "since" is the first seq this run of audit-ship received (the
cursor+1 it started from, fed by audit-read --from-cursor) and "sinceCount"
the distinct records acked in the run so far: every record it received from
since to lastSeq was delivered or quarantined. With them, an audit-ack
restarted after a kill (it loses the acks it had read and not committed)
takes the next acks of a shipper that ran on, after checking the claim
against the database, instead of refusing them as skipping records. Nothing is acked that was not delivered, and no ack is written
after a batch that failed, so the cursor can never pass an undelivered
record. --acks PATH names a FIFO (created 0600 if absent) read by audit-ack;
--acks - writes them to stdout.

Writing an ack line is handing it over; committing it is audit-ack's job, and
audit-ship cannot know whether it did (audit-ack's summary and the cursor
say). An ack to the FIFO never blocks the shipper: each line goes out in one
non-blocking write (whole, never half a line), and while no audit-ack reads
the FIFO, or the FIFO is full because audit-ack does not keep up, acks are
held (merged into one range) and handed over when there is room. At the end
of the input, and after a stop, audit-ship waits at most --drain-timeout for
audit-ack to take the held acks, saying so on stderr; if some are still held
then it names their seqs and exits 8. Those records were delivered but not
acked: the next run ships them again (duplicates, not loss). The summary
counts "acks of N handed to audit-ack" and "acks of M NOT handed over";
auditpipe_ship_acks_held_records is the second figure while running.

# Delivery

--inflight requests are sent at once (default 4). A failed request is
classified:

	retryable   network errors, timeouts, 408, 429, 5xx, HEC codes 8 and 9,
	            and any answer that is not the SIEM's documented success
	            answer (below): retried with exponential backoff and full
	            jitter, from --min-backoff up to --max-backoff, and never
	            sooner than the server's Retry-After; for ever, or until
	            --give-up-after
	config      401, 403 (after re-reading the secret once: a rotated
	            token file needs no restart), HEC code 7 (index not allowed
	            for this token, named in the message), an Elasticsearch item
	            refused with 403: retried no sooner than --refused-backoff
	            (default 1m); counts toward the stop (exit 7)
	too large   413: the batch is split in halves until it fits; a single
	            record that does not fit is quarantined as "too large"
	            (see Large records)
	bad request 400 without a position: the batch is bisected to isolate
	            the poison record instead of resending it unchanged
	poison      the SIEM rejected one record (HEC codes 6, 12, 13, 15 with
	            invalid-event-number: the events before it count as
	            delivered, the ones after it are resent; an Elasticsearch
	            bulk item with another 4xx, e.g. 400 mapper_parsing_exception
	            or 404 index_not_found_exception)

Only each SIEM's documented success answer counts as delivery:

	splunk      HTTP 200 with HEC's JSON {"text":"Success","code":0}
	            (with --indexer-ack also its "ackId", then the ack poll)
	elastic     HTTP 200 with a bulk answer: a JSON object with a boolean
	            "errors" and exactly one item per document sent
	datadog     HTTP 202 with a JSON object ({})

Anything else with a 2xx status (a proxy's HTML page, an empty body,
truncated JSON, a wrong item count, a 200 where 202 is due) and any answer
that came before the request body was sent in full (whatever answered did
not read the records) delivers nothing: it is a retryable failure whose
message names what answered (status, Content-Type and the first 200 bytes
of the body, secrets masked), e.g.

	audit-ship: splunk:prod: retryable failure: HTTP 200: not HEC's success answer
	(HTTP 200 {"text":"Success","code":0}): the body is not a JSON object; so no
	record counts as delivered. What answered: HTTP 200, Content-Type "text/html",
	57-byte body "<html>…". If this persists, something other than HEC answers at
	this URL (a proxy, a load balancer, a login page): check the URL and the path to it

Elasticsearch answers per item: items that went in (201, or 409 for a
document it already had: a replay, checked as described under
Elasticsearch for --id-field seq) count as delivered and are never resent;
items refused for now (429, 5xx) are resent alone after the backoff; poison
items are set aside. Datadog gives no per-item answer: a 400 is bisected.

--on-poison says what a poison record does. quarantine (the default when
--quarantine is set) appends it to the --quarantine file (0600, fsynced
before the ack) with its seq, recordHash, the SIEM's status and text, and
the record line itself, lists its seq in the ack, and goes on, loudly. pause
(the default without --quarantine) stops the shipper (exit 6) before the
batch is acked, so the record is read again after the restart. Re-ship a
quarantine file after fixing the cause; audit-read --quarantine emits the
embedded record lines byte for byte (see go doc ./cmd/audit-read):

	audit-read --quarantine quarantine.ndjson | audit-verify --mode report \
	  | audit-ship --kind elastic ... --exporter elastic:reship --acks - >/dev/null

After --pause-after (default 5) consecutive non-retryable failures (config
errors or poison records, with no delivery in between) the shipper pauses
itself: it stops consuming (also a read waiting on a quiet input), says why
on stderr, hands over the acks of what was delivered, and exits 7 if the
last failure was a refusal of our configuration (a token, an index: fix it,
then restart), 6 otherwise (poison records). The next start resumes from
the cursor.

Refusals of our configuration are spaced: after one, the next attempt comes
no sooner than --refused-backoff (default 1m), and requests in flight
together count once. So a token rotated while audit-ship runs has
(--pause-after - 1) x --refused-backoff, 4 minutes by default, to land in the
token file (and in the SIEM) before the shipper stops; the next attempt
re-reads it, no restart needed. Each refusal is logged with its count and
when the next attempt comes.

A SIEM that fails (unreachable: a wrong host or port, TLS, 5xx) is logged at
the first failure and then at least once a minute, with the error, since
when deliveries have been failing and how many requests failed, and once
more when deliveries resume. The gauge auditpipe_export_failing_since_seconds
holds the Unix time of the first failure since the last delivery (0 while
deliveries go through): alert on

	auditpipe_export_failing_since_seconds > 0 and time() - auditpipe_export_failing_since_seconds > 300

A service retries for ever (the default). A one-shot drain or a cron job
gives --give-up-after DURATION: once deliveries have failed that long
without one success, audit-ship stops, hands over the acks of what was
delivered and exits 8, naming the last error and since when. Nothing is
lost: the next run starts from the cursor.

Memory: the batches in flight (--inflight, and the one being read) are
what audit-ship holds; a batch's memory and its request body are reused
for later batches once its ack is handed over (or the batch failed), never
sooner, so a run makes little garbage (docs/design.md, "Batch memory is
reused"). AUDITPIPE_POISON_RELEASED=1 overwrites that memory with 0xAA
bytes when it is released, for tests: any use after release then shows as
changed bytes.

# Large records

Declaragent puts no limit on a record, and neither does audit-ship: a record
up to --max-line (64 MiB) is shipped whatever its size if the SIEM takes it
(audit-batch puts a record over --max-bytes in a batch of its own). A record
the SIEM will not take for its size is "too large": a 413 from HEC or
Elasticsearch for that record alone, Datadog's 1 MB per log (checked before
sending: Datadog would truncate it), or VictoriaLogs' 2 MiB per entry (it
drops a longer entry and still answers success, so a record line over
2 MiB - 16 KiB is not sent to a store that answers as VictoriaLogs, told by
its X-Server-Hostname header). With --quarantine it is quarantined with a
reason starting "too large: " and logged as

	audit-ship: splunk:prod: record seq 42 is too large for the SIEM, quarantined in FILE: too large: …

and its seq is listed in the ack; without --quarantine audit-ship pauses
(exit 6): "record seq 42 (<hash>, 5242880 bytes) is too large for the SIEM:
…; set --quarantine FILE to set such records aside and go on". It is never
called tampering, nor "rejected by the SIEM".

# Splunk HEC

Each record becomes one HEC event whose "event" is the whole record line as
a JSON string, so Splunk's _raw (and any store's message field) holds the
exact line, and the chain re-verifies from what the SIEM stored. "time" is
the record's ts in seconds with milliseconds; "fields" carries seq,
tenantId, kind and recordHash as indexed fields, and "chain" when the
record's chain is known (see "Many chains"). Bodies are gzipped
(--gzip=false to turn off). Compression is about 40% of audit-ship's CPU
(a median 2.4 us of its 5.7 us per record on the host README's "Performance,
measured" names); for a HEC on the same host (a local forwarder or relay),
where it saves no network, --gzip=false makes the whole pipeline need about
0.7x the CPU and run about 1.4x as fast (BENCH_ALL=1 scripts/bench.sh, which
prints each figure beside a baseline from the same run).
With --indexer-ack, a batch counts as delivered only once Splunk reports it
indexed (the channel is sent on every request and poll; behind a load
balancer, sticky sessions are required).

--url is the HEC endpoint (a URL without a path gets
/services/collector/event); --token the HEC token; --index, --source,
--sourcetype (default declaragent:audit) and --host the event metadata.

# Elasticsearch

--kind elastic sends each record as a "create" action to <--url>/_bulk, with
the recordHash as _id (--id-field seq to use the seq), so a replay is
idempotent: Elasticsearch answers 409 to the second create, which counts as
delivered. With the default _id that 409 is the same record by construction
(the recordHash is the SHA-256 of the chain up to the record). With
--id-field seq it is not: a reset database or a second host shipping to the
same index has other records under the same seqs. So each 409 is checked
with _mget (the credentials need the read privilege on the index; a 403
there is a config failure naming that privilege): the record counts as delivered only if the
stored document has its recordHash. Otherwise audit-ship stops at once
(exit 6, no retry, nothing of the batch acked), its message e.g.

	409 on a document of another chain: seq 40 (_id "40" in
	index "audit"): stored recordHash "534e…", this record's 1dac…. The index
	already holds a different record under this seq (a reset database, or a
	second host shipping to the same index with --id-field seq): this record
	was not stored and is not acked. Ship to another index, or use the
	default --id-field recordHash

--doc-shape message (default) sends a document with @timestamp, seq,
tenantId, kind, recordHash, prevHash and the whole record line as the
string "message" (byte for byte in _source); --doc-shape line sends the
record line itself as the document. --index defaults to declaragent-audit.
Authentication, chosen by --auth or by the credential given:

	--api-key REF              apiKey: "Authorization: ApiKey <key>", the encoded key Kibana shows
	--username U --password REF basic
	--bearer REF               bearer: an OAuth2 or service account token
	(none)                     none

Credentials of two kinds at once, or of another kind than --auth, are a usage
error. For VictoriaLogs set --url http://HOST:9428/insert/elasticsearch.

# Datadog

--kind datadog posts logs to https://http-intake.logs.<--site>/api/v2/logs
(sites: datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu,
ap1.datadoghq.com, ap2.datadoghq.com, ddog-gov.com) with the key from
--api-key. Each log carries the record line as "message", the record's ts as
"timestamp", seq, tenantId, kind, recordHash and prevHash as attributes, and
--service (default declaragent), --source (ddsource, default
declaragent:audit), --tags (ddtags) and --hostname. A record whose log would
be over Datadog's 1 MB per-log limit is not sent: it is quarantined as too
large (Datadog would truncate it and break the chain). --url replaces the intake host (a proxy, or VictoriaLogs:
http://HOST:9428).

# Per-tenant routing

--index (splunk, elastic) and --tags (datadog) take a template instead of a
fixed value, as agent.yaml's index: "declaragent_${tenant:id}" does:

	${tenant:id}       the record's tenantId ("_system" for chain-wide entries)
	${kind}            the record's kind
	${date:FORMAT}     the record's ts as a UTC date, FORMAT of YYYY, MM, DD and separators

	--index 'declaragent_${tenant:id}'                    splunk: declaragent_acme, declaragent__system
	--index 'declaragent-audit-${date:YYYY.MM.DD}'        elastic: a daily index
	--tags 'env:prod,tenant:${tenant:id}'                 datadog

A template is checked at startup against the SIEM's naming rules (Splunk:
lowercase letters, digits, _ and -, not starting with _ or -, no "kvstore", at
most 80 characters, a conservative bound of ours; Elasticsearch: lowercase, none
of \ / * ? " < > | , # : or space, not starting with - _ + or ., at most 255
bytes; Datadog: tags that start with a letter, at most 200 characters each).
An unknown placeholder, or a template that can never give a valid name, is a
usage error (exit 2). A template must begin with literal text, so no record
can choose how a name starts (no tenant can route into _internal or
.security). A tenant id or kind made only of a-z, 0-9, _ and - is used as it
is; any other is lowercased, every other character replaced by _, cut to fit,
and suffixed with - and 8 hex digits of its SHA-256, so two tenants never share
an index by accident (Acme and acme do not) and no value can bring a /, a quote,
a comma or a line break into a name. Names go into the JSON body, escaped,
never into the URL. Splunk refusing a routed index (HEC code 7) names the
index and the tenant; it is a configuration error, which pauses the shipper
after --pause-after tries: create the index, or allow it on the token, and
restart.

# Secrets

Every secret flag takes a reference: env:NAME, file:PATH, or exec:COMMAND,
run without a shell (words split at blanks, with '…' and "…" quoting; no $VAR
or pipes: name a script for those), bounded by --secret-timeout (default
10s), its standard output (trailing blanks removed) being the secret. Its
standard error is shown only if it fails, with anything it printed on
standard output masked; the command line itself may appear in messages, so
it must not hold a secret. Declaragent's ${secret:env:NAME},
${secret:file:PATH} and ${secret:exec:COMMAND} are accepted as the same
references; ${secret:vault:PATH} is refused with the advice to use
exec:vault kv get -field=token PATH. A literal secret is refused, on the
command line (argv is visible to every user of the host) and in agent.yaml.
After a 401 or 403 the reference is resolved again (the file re-read, the
command re-run) and the request resent if the secret changed: rotation needs
no restart. No secret appears in any message.

Plain http:// is refused for non-loopback hosts unless --allow-insecure-http;
TLS 1.2 or later, system roots or --ca-file, client certificate with
--cert-file/--key-file. HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured.

# agent.yaml

--agent-config FILE reads the audit.export block of a Declaragent agent.yaml,
as Declaragent's documentation writes it, and takes its values as defaults:
a flag, an AUDIT_SHIP_* variable or a -config line for the same setting wins.
--kind may be left out (the block's kind is used) but may not differ from it.

The agent.yaml keys (from lib/sink/<kind>/declare.go):

	kind: splunk    hecUrl -> --url, token -> --token, index -> --index,
	                sourcetype -> --sourcetype, source -> --source
	kind: elastic   baseUrl -> --url, index -> --index, auth.kind -> --auth,
	                auth.apiKey -> --api-key, auth.username -> --username,
	                auth.password -> --password, auth.token -> --bearer
	kind: datadog   apiKey -> --api-key, site -> --site, service -> --service,
	                source -> --source, tags -> --tags
	every kind      batchSize -> --batch-size, intervalMs -> --batch-interval

tags may be a string or a YAML list. Elastic credentials are taken as a
unit: any credential flag replaces the whole auth block. Unknown keys, and keys of another kind, are errors with
their line; everything outside audit.export is ignored. Secrets in the file
must be references (env:…, ${secret:…}): a literal is refused without being
echoed. batchSize and intervalMs apply to the in-process batcher (plain
record input); with audit-batch in the pipe, give audit-batch the same
--agent-config (or its --max-count and --max-interval): audit-ship warns.

# File

--kind file appends each record line, byte for byte, to --path (or with --dir
to DIR/audit-YYYY-MM-DD.ndjson[.gz], by record day in UTC), and fsyncs before
the batch is acked. With --gzip each batch is one gzip member. The output is
itself valid input for audit-read and audit-verify (forensic replay).

The file sink is exactly-once across restarts, because it can see what its
archive holds. On its first batch it reads the archive's newest records
(the file, or the newest day files of --dir; a plain file from its end
backwards, a gzip file whole) back to the batch's first seq, at most the
newest 524288 (seq and recordHash: 20 MiB, 40 MiB at most while reading). A record the archive
already holds at its seq with the same recordHash is not written again: it
counts as a duplicate (auditpipe_duplicates_total) and is still acked, so
after a Ctrl-C of a drain whose acks were lost, the rerun moves the cursor
and the archive holds every record once. A record at a seq where the archive
holds another recordHash, or a first record past the archive's end whose
prevHash is not the archive's last recordHash, means the archive holds
another chain (another database or exporter, or a reset database):
audit-ship stops at once
(exit 6), writes and acks nothing of the batch, and says so:

	the archive holds another chain: seq 290 there has recordHash 1dac…, this
	record's is "534e…" (the archive, newest record seq 339 in
	/var/lib/auditpipe/archive/audit-2026-12-03.ndjson.gz, was written from
	another database or exporter, or the database was reset): nothing written
	or acked; move the archive aside or give another --path

A redelivery reaching back further than the records remembered is written
again (at-least-once, as for the other sinks), never skipped unchecked.

# Kafka

--kind kafka produces each record to a Kafka topic (docs/fleet.md: many host
databases into one topic, read centrally by audit-consume): one message per
record, whose value is the record line byte for byte, whose key is the
record's chain id (docs/contract.md section 5), with the headers seq,
recordHash, tenant and chain. The key keeps each chain in one partition, in
seq order: audit-ship sends one batch at a time (--inflight is 1), and the
client keeps the order of a partition's records through its own retries.
The producer is idempotent with acks from all in-sync replicas (acks=all):
a broker that dies mid-send, a partition leader that moves, or a produce
answer lost after the write makes the client resend, and the broker drops
what it already holds, so no record is written twice within one run. A
batch is acked only when Kafka acked every record of it; a record Kafka did
not ack by --timeout fails the batch (retryable: the records not acked are
sent again after the backoff; one Kafka may have written after all is then
a duplicate that audit-consume drops by its seq, at-least-once as for the
other sinks). A record over the topic's max.message.bytes (or the client's
1 MB batch limit) is poison, too large (quarantined or paused, --on-poison).

The chain id comes from, in this order: the chain the batch names (a chain
mark before its records: audit-verify --chain-mark, or the "chain" of
audit-batch's header, which follows those marks); --chain-id; the leading
mark lines of the input (audit-read's anchor mark carries "chain" when
audit-ship reads audit-read's output directly); a record at seq 1 with an
empty prevHash names its chain by its own recordHash (a first drain from
genesis). With none of them a batch fails as a configuration error naming
--chain-id (exit 7 after --pause-after). A host's audit-ship ships one
chain; input of several chains (each run after its chain mark) is keyed
record by record.

--topic is a name or a template (${tenant:id}, ${kind}, ${date:...}; Kafka's
topic rules: letters, digits, . _ -, at most 249, starting with a letter or
digit). audit-ship does not create topics: create it with the partitions the
fleet needs (docs/fleet.md, "Sizing partitions"). An unknown topic, a
refused SASL login (SASL_AUTHENTICATION_FAILED) and a missing ACL (topic
WRITE, cluster IDEMPOTENT_WRITE) are configuration errors: --check says so
with exit 7, a run stops after --pause-after of them in a row (exit 7). A broker that
cannot be reached is retried. TLS: --tls, or any of --ca-file, --cert-file,
--key-file, --insecure-skip-verify. SASL: --sasl plain, scram-sha-256 or
scram-sha-512 with --username and --password REF (re-read on each new
connection, so a rotated file is picked up); PLAIN without TLS to a broker
other than loopback is refused unless --allow-insecure-sasl. --compression
(default lz4) compresses the producer's batches. --dry-run prints the
messages of the first batch (topic, key, headers, value) without connecting.

# Many chains

A batch holds the records of one chain. When the input names the chain
(chain marks, as audit-verify writes them on the central side of a Kafka
fleet or with --chain-mark; or the "chain" of audit-batch's headers, which
follow those marks), every record of the batch is labelled with it: Splunk
gets an indexed field "chain" in "fields", Elasticsearch and Datadog a
"chain" field in the document (with --id-field seq the _id becomes
<chain>:<seq>, since seqs repeat across chains; --doc-shape line and the
file sink write the record line only, with no label), Kafka uses it as the
key. Each ack names its chain ("chain":"<id>"), the acks of each chain are
released in that chain's seq order (a batch not delivered holds back only
its own chain's later acks), and acks of different chains are never merged:
audit-consume commits by them; audit-ack takes them when they name its
database's own chain. Input without chain marks is one unnamed chain:
events and acks without "chain", byte for byte as before.

# Progress

When stderr is a terminal (and without --quiet), a progress line is redrawn
in place every half second: records delivered, records/s, the last seq whose
ack was handed over, and the state: requests in flight, "failing for 12s (3
failed requests), retrying", acks held because audit-ack is not reading,
paused. Nothing of it is written when stderr is a pipe or a file. The stages
of a pipeline share the terminal: audit-read's and audit-verify's lines give
way to audit-ship's while it draws (a lock on the terminal), so one line
shows, without flicker.

# Trying a configuration: --check and --dry-run

--check probes the SIEM (health, then the credential with a request that
writes nothing) and exits: 0 when it answers and accepts the credential; 7
only when it refuses our configuration (401/403, an index not allowed); 1,
saying what failed, when it cannot be reached at all (a name that does not
resolve, nothing listening, a TLS failure such as a certificate signed by an
unknown authority, which names --ca-file) or answers with a server error:
those are not refusals of the configuration.

--dry-run reads the first batch (batching plain records as a run would),
has the sink build its requests exactly as a run would, and prints them on
stdout: the method and URL (query values masked), the headers sorted, with
the credentials masked (Authorization keeps its scheme: "Authorization:
Splunk ******** (masked)"; DD-API-KEY), and the body, decoded from gzip. Then
it exits 0. Nothing is sent, no ack is written (no --acks FIFO is made), the
file sink's file is not created (its lines are printed instead). Secret
references are resolved, so a wrong reference fails here as in a run.

	audit-read --db audit.db --to-seq 3 | audit-ship --kind splunk --url https://hec:8088 --token env:HEC --dry-run

# Flags

Flags that belong to some kinds only (--token to splunk, --api-key to
elastic and datadog, …) are a usage error with another --kind. Each flag can also be set as AUDIT_SHIP_<FLAG> (upper case, dashes as
underscores), or in a file named by -config. Run audit-ship -h for the list.
A mistyped flag, an AUDIT_SHIP_* variable that names no flag (with
did-you-mean), or a bad -config line (named FILE:LINE) is one line, exit 2.
-max-line N caps an input line (default 64 MiB, as in every stage); a
record within it is shipped whatever its size if the SIEM takes it (see
"Large records").

The sink flags (from lib/sink/<kind>/declare.go; go test ./cmd/audit-ship
fails, printing the new table, when this one differs from them):

	--url VALUE
	    splunk: HEC URL (path defaults to /services/collector/event); elastic:
	    cluster base URL; datadog: intake base URL instead of --site's (a
	    proxy, VictoriaLogs)
	--gzip (default true)
	    splunk, elastic, datadog: compress request bodies; file: compress the
	    output
	--index VALUE
	    splunk: index, or a template such as 'declaragent_${tenant:id}'
	    (placeholders ${tenant:id}, ${kind}, ${date:YYYY.MM.DD}) (default the
	    token's); elastic: index, or a template such as
	    'declaragent_${tenant:id}' (placeholders ${tenant:id}, ${kind},
	    ${date:YYYY.MM.DD}) (default declaragent-audit)
	--source VALUE
	    splunk: source (default declaragent:audit); datadog: ddsource (default
	    declaragent:audit)
	--token VALUE
	    splunk: HEC token reference: env:NAME, file:PATH or exec:COMMAND (a
	    literal token is refused)
	--sourcetype VALUE (default declaragent:audit)
	    splunk: sourcetype
	--host VALUE
	    splunk: host field (default the hostname)
	--indexer-ack
	    splunk: ack a batch only once Splunk reports it indexed (channel + ack
	    polling)
	--ack-timeout D (default 2m0s)
	    splunk: how long to wait for the indexer ack before resending
	--channel VALUE
	    splunk: X-Splunk-Request-Channel GUID (generated with --indexer-ack or
	    --endpoint raw)
	--endpoint VALUE (default event)
	    splunk: event: one JSON event per record (/services/collector/event);
	    raw: the record lines themselves as the body of /services/collector/raw
	    (needs the sourcetype's line breaking: docs/siems/splunk.md)
	--hec-fields (default true)
	    splunk: with --endpoint event: send seq, tenantId, kind and recordHash
	    as indexed fields (false: a smaller event; they stay in the line, for
	    spath)
	--timeout D (default 30s)
	    splunk, elastic, datadog: per-request timeout; kafka: how long a record
	    may wait for Kafka's ack before the batch is failed (retryable) and
	    resent
	--ca-file VALUE
	    splunk, elastic, datadog, kafka: PEM CA bundle to trust instead of the
	    system roots
	--cert-file VALUE
	    splunk, elastic, datadog, kafka: PEM client certificate
	--key-file VALUE
	    splunk, elastic, datadog, kafka: PEM client key
	--insecure-skip-verify
	    splunk, elastic, datadog, kafka: DANGEROUS: do not verify the SIEM's
	    certificate
	--allow-insecure-http
	    splunk, elastic, datadog: allow a plain http:// URL to a non-loopback
	    host (credentials sent unencrypted)
	--secret-timeout D (default 10s)
	    splunk, elastic, datadog, kafka: how long an exec: secret reference may
	    run
	--api-key VALUE
	    elastic: encoded API key (auth apiKey), a reference: env:NAME,
	    file:PATH or exec:COMMAND; datadog: API key, a reference: env:NAME,
	    file:PATH or exec:COMMAND
	--auth VALUE
	    elastic: apiKey, basic, bearer or none (default: the kind of the
	    credential flag given: --api-key, --username/--password or --bearer)
	--username VALUE
	    elastic: user name for basic auth (not a secret); kafka: SASL user name
	    (not a secret)
	--password VALUE
	    elastic: password reference for basic auth; kafka: SASL password
	    reference: env:NAME, file:PATH or exec:COMMAND (re-read on every new
	    connection)
	--bearer VALUE
	    elastic: bearer token reference (OAuth2 or service account token)
	--id-field VALUE (default recordHash)
	    elastic: document _id: recordHash (idempotent across database resets)
	    or seq (a 409 is then checked with _mget: needs the read privilege)
	--doc-shape VALUE (default message)
	    elastic: message (the record line as the string field message, plus
	    searchable fields) or line (the record line itself as the document)
	--site VALUE (default datadoghq.com)
	    datadog: site: datadoghq.com, us3.datadoghq.com, us5.datadoghq.com,
	    datadoghq.eu, ap1.datadoghq.com, ap2.datadoghq.com, ddog-gov.com
	--service VALUE (default declaragent)
	    datadog: service
	--tags VALUE
	    datadog: ddtags, k:v,k:v, or a template such as
	    'env:prod,tenant:${tenant:id}'
	--hostname VALUE
	    datadog: hostname (default the hostname)
	--path VALUE
	    file: output file (or directory with --dir)
	--dir
	    file: --path is a directory of per-day files
	    audit-YYYY-MM-DD.ndjson[.gz]
	--no-fsync
	    file: do not fsync before acking (a power loss can lose acked batches)
	--brokers VALUE
	    kafka: bootstrap brokers, host:port[,host:port...]
	--topic VALUE (default declaragent-audit)
	    kafka: topic, or a template such as 'declaragent-audit-${tenant:id}'
	    (placeholders ${tenant:id}, ${kind}, ${date:YYYY.MM.DD}); audit-ship
	    does not create topics
	--compression VALUE (default lz4)
	    kafka: producer batch compression: none, gzip, snappy, lz4, zstd
	--chain-id VALUE
	    kafka: the chain id every record is keyed by (default: the chain
	    audit-read's anchor mark names, or the recordHash of a seq 1 record;
	    docs/contract.md section 5)
	--client-id VALUE (default auditpipe)
	    kafka: Kafka client id (broker logs and quotas)
	--tls
	    kafka: connect with TLS (implied by --ca-file, --cert-file, --key-file,
	    --insecure-skip-verify)
	--sasl VALUE
	    kafka: SASL mechanism: plain, scram-sha-256, scram-sha-512 (with
	    --username and --password)
	--allow-insecure-sasl
	    kafka: allow SASL PLAIN to a non-loopback broker without TLS (the
	    password travels in clear)

# Metrics

--metrics-listen ADDR serves Prometheus metrics at http://ADDR/metrics;
--metrics-file PATH writes a node_exporter textfile (atomically, every 5 s
and at exit), for cron jobs. Both carry the labels exporter and vendor:

	declaragent_audit_export_failures_total{retryable="true"|"false"}  failed requests (alert on any retryable="false")
	declaragent_audit_export_acked_total      records whose ack was handed to audit-ack
	declaragent_audit_export_paused           1 once the shipper paused itself
	auditpipe_records_out_total               records delivered (duplicates included)
	auditpipe_export_failures_by_reason_total{reason}, auditpipe_retries_total,
	auditpipe_quarantined_total, auditpipe_duplicates_total, auditpipe_inflight_requests,
	auditpipe_requests_total, auditpipe_splits_total, auditpipe_bisects_total,
	auditpipe_ship_busy_seconds_total, auditpipe_ship_last_acked_seq
	auditpipe_request_duration_seconds        histogram: each request to the SIEM, retries included
	auditpipe_export_failing_since_seconds    Unix time of the first failure since the last delivery; 0 if none
	auditpipe_ship_acks_held_records          records delivered whose ack is not handed over yet
	auditpipe_marks_dropped_total             mark lines dropped

The committed cursor and the head of the log are audit-ack's metrics.

# Threads

audit-ship runs Go code on one thread at a time (GOMAXPROCS 1) unless the
environment sets GOMAXPROCS. In a pipeline of five Go processes a second
thread per process bought no throughput on a 2-core host and cost CPU at
every hand-off between goroutines: the five stages together used about 10%
less CPU per record on one on a host busy with other work, less on a quiet
one (docs/perf.md, scripts/bench-ab.sh).
GOMAXPROCS=N gives audit-ship N threads. On a host with idle cores where
audit-ship is the pipeline's bottleneck (its compression), GOMAXPROCS=2 or
more lets it compress the --inflight batches at once.

# Exit codes

	0    input ended (or the first SIGINT/SIGTERM) and the ack of every batch
	     delivered was handed over
	1    runtime failure; --check: the SIEM could not be reached (DNS, connection,
	     TLS) or failed, which is not a refusal of the configuration
	2    usage: bad flags, a flag for another --kind, a literal or unresolvable
	     secret, a bad routing template, a bad agent.yaml, --acks that is not a FIFO
	4    malformed input (incomplete batch, a line that is not a record)
	6    paused: --pause-after consecutive non-retryable failures, the last a
	     poison record (--on-poison pause); or at once on a conflict with what
	     the store holds (an Elasticsearch document of another chain under
	     --id-field seq, a file archive of another chain)
	7    the SIEM refused our configuration (401/403, an index not allowed):
	     --pause-after refusals in a row, or --check (a refusal only); fix it, then restart;
	     kafka: an unknown topic, a refused SASL login or ACL, no chain id
	8    incomplete, nothing lost: acks of delivered records not handed to
	     audit-ack within --drain-timeout (no reader on the FIFO), or not
	     written because audit-ack stopped first during a stop (--acks -), or
	     --give-up-after passed without a delivery; the next run re-sends
	141  stdout (--acks -) closed: quiet

On the first SIGINT or SIGTERM audit-ship stops reading (also a read waiting
on a quiet input, or the first line), ends retry waits at once, lets the
requests in flight finish (at most --drain-timeout), hands over their acks
(at most --drain-timeout more) and exits 0 with its summary (8 if acks were
not handed over); a second signal exits at once (130). Anything not acked is
shipped again after the restart: duplicates are possible, loss is not. With
--acks -, audit-ship exits 141 at once when its stdout's reader goes away,
also while its input is quiet.

# Example

	mkfifo -m 600 /run/auditpipe/acks.fifo
	audit-ack --fifo /run/auditpipe/acks.fifo --db audit.db --exporter splunk:prod &
	audit-read --db audit.db --from-cursor splunk:prod --follow \
	  | audit-verify --db audit.db --from-cursor splunk:prod \
	  | audit-batch --siem splunk \
	  | audit-ship --kind splunk --url https://hec.example.com:8088 --token file:/run/secrets/hec \
	      --exporter splunk:prod --acks /run/auditpipe/acks.fifo --quarantine /var/lib/auditpipe/poison.ndjson
*/
package main
