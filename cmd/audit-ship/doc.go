/*
audit-ship delivers audit records to a SIEM and reports each delivered batch
as an ack line, so that audit-ack can commit the exporter's cursor.

Synopsis:

	audit-ship --kind splunk --url URL --token env:NAME|file:PATH [flags] < batches
	audit-ship --kind file --path FILE|DIR [--dir] [--gzip] [flags] < batches

# Input

audit-batch's framing (a header line {"batch":{...,"count":N,...}} followed by
exactly N record lines), or plain record lines, which audit-ship then batches
itself with the --kind's preset caps, exactly as audit-batch --siem KIND
would. So both of these work:

	audit-read ... | audit-verify | audit-batch --siem splunk | audit-ship --kind splunk ...
	audit-read ... | audit-verify | audit-ship --kind splunk ...

A header whose records do not all arrive (the stage before stopped mid-batch)
is not sent: those records were never acked, so they are read again from the
cursor on the next start. Exit 4.

# Output: acks

For every batch that was delivered completely, audit-ship writes one line to
--acks, strictly in seq order even with several requests in flight:

	{"ack":{"exporter":"splunk:prod","firstSeq":40,"lastSeq":42,"lastHash":"<64 hex>","count":3,"quarantined":[]}}

An ack means every record from firstSeq to lastSeq was delivered, or was
rejected by the SIEM as poison and written to --quarantine (its seq is then
listed). Nothing is acked that was not delivered, and no ack is written
after a batch that failed, so the cursor can never pass an undelivered
record. --acks PATH names a FIFO (created 0600 if absent) read by audit-ack;
while no audit-ack reads it, acks are held (merged into one range) and handed
over when one does. --acks - writes them to stdout.

# Delivery

--inflight requests are sent at once (default 4). A failed request is
classified:

	retryable   network errors, timeouts, 408, 429, 5xx, HEC codes 8 and 9:
	            retried forever with exponential backoff and full jitter,
	            from --min-backoff up to --max-backoff, and never sooner
	            than the server's Retry-After
	config      401, 403 (after re-reading the token once: a rotated
	            token file needs no restart), HEC code 7 (index not allowed
	            for this token): retried with backoff; counts toward pause
	too large   413: the batch is split in halves until it fits; a single
	            record that does not fit is poison
	bad request 400 without a position: the batch is bisected to isolate
	            the poison record instead of resending it unchanged
	poison      the SIEM rejected one record (HEC codes 6, 12, 13, 15 with
	            invalid-event-number: the events before it count as
	            delivered, the ones after it are resent)

A poison record goes to the --quarantine file (0600, fsynced before the ack)
with its seq, recordHash, the SIEM's status and text, and the record line
itself; the pipeline goes on, loudly. Without --quarantine a poison record
pauses the shipper instead. Re-ship a quarantine file after fixing the cause:

	jq -c .line quarantine.ndjson | audit-verify --mode report | audit-ship --kind splunk ...

After --pause-after (default 5) consecutive non-retryable failures (config
errors or poison records, with no delivery in between) the shipper pauses
itself: it stops consuming, says why on stderr, hands over the acks of what
was delivered, and exits 6. The next start resumes from the cursor.

# Splunk HEC

Each record becomes one HEC event whose "event" is the whole record line as
a JSON string, so Splunk's _raw (and any store's message field) holds the
exact line, and the chain re-verifies from what the SIEM stored. "time" is
the record's ts in seconds with milliseconds; "fields" carries seq,
tenantId, kind and recordHash as indexed fields. Bodies are gzipped
(--gzip=false to turn off). With --indexer-ack, a batch counts as delivered
only once Splunk reports it indexed (the channel is sent on every request and
poll; behind a load balancer, sticky sessions are required).

The token is a reference, env:NAME or file:PATH; a literal token on the
command line is refused, since argv is visible to every user of the host. No
token appears in any message. Plain http:// is refused for non-loopback hosts
unless --allow-insecure-http; TLS 1.2 or later, system roots or --ca-file,
client certificate with --cert-file/--key-file. HTTPS_PROXY, HTTP_PROXY and
NO_PROXY are honoured.

# File

--kind file appends each record line, byte for byte, to --path (or with --dir
to DIR/audit-YYYY-MM-DD.ndjson[.gz], by record day in UTC), and fsyncs before
the batch is acked. With --gzip each batch is one gzip member. The output is
itself valid input for audit-read and audit-verify (forensic replay).

# Flags

Each flag can also be set as AUDIT_SHIP_<FLAG> (upper case, dashes as
underscores), or in a file named by -config. Run audit-ship -h for the list.

# Exit codes

	0    input ended (or SIGTERM) and every batch read was delivered and acked
	1    runtime failure
	2    usage: bad flags, a literal token, --acks that is not a FIFO
	4    malformed input (incomplete batch, a line that is not a record)
	6    paused: --pause-after consecutive non-retryable failures
	7    --check: the SIEM refused our configuration

On the first SIGINT or SIGTERM audit-ship stops reading, lets the requests in
flight finish (at most --drain-timeout), hands over their acks and exits 0; a
second signal exits at once (130). Anything not acked is shipped again after
the restart: duplicates are possible, loss is not.

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
