/*
audit-fetch reads audit records back out of a log store's search API and
writes them as record lines in seq order: the forensic round trip, proving
that what the SIEM holds is the chain that was shipped.

Synopsis:

	audit-fetch --url URL [--kind splunk|elastic|datadog] [--host H] [--source S] [--chain ID] [--query LOGSQL]

# How it works

audit-ship --kind KIND sends each record line as the event text and its seq
as a field; each kind names that field its own way, and so do the names of
the shipment (host, source):

	--kind    events selected                 seq field    --host     --source
	splunk    those with fields.seq           fields.seq   host       source
	datadog   seq, and service, ddsource      seq          hostname   ddsource
	          or hostname
	elastic   seq, and none of those          seq          -          -

audit-fetch queries

	[QUERY | filter] KIND-FILTER [HOST-FILTER] [SOURCE-FILTER] | sort by (SEQFIELD) | fields _msg, SEQFIELD

and writes each _msg value as one line, unchanged, so audit-verify
re-checks the chain on the fast path.

Before that, two stats queries check the selection, so that what reaches
audit-verify is one shipment of one kind: otherwise audit-verify would
report an intact chain as tampered (a kind sorted by a field it lacks
comes out in time order: seq_gap; two shipments interleave two chains:
equivocation). Each refusal is exit 2, before any output, and names the
flag to give:

  - no --kind and the query matches several kinds: "the query matches 210
    splunk events, 150 elastic events, ...: give --kind splunk or --kind
    elastic or ...". With one kind only, that kind is used and named on
    stderr.
  - the wrong --kind: "--kind splunk: the query matches no events audit-ship
    --kind splunk stores, but 150 elastic events: give --kind elastic".
  - two shipments (splunk: host, source, sourcetype; datadog: hostname,
    ddsource, service) whose seq ranges overlap: "the selection mixes two
    shipments whose seqs overlap ...: host="ha" ... (150 events, seq
    1..150) and host="hb" ... (60 events, seq 1..60); pick one: --host ha
    or --host hb; or --query". One database shipped under two host names
    (a renamed host) is refused too if the re-sends overlap; pick a seq or
    _time range with --query.
  - --host or --source with --kind elastic: bulk documents carry neither,
    and VictoriaLogs ignores the bulk _index; narrow with --query (a _time
    range). Two Elastic shipments in one VictoriaLogs cannot otherwise be
    told apart, nor checked for mixing.
  - the events of several chains (a Kafka fleet's store, where every
    event carries its chain: splunk fields.chain, elastic and datadog
    chain): "the selection
    holds the events of several chains (chain: a fleet's store); fetch one
    chain at a time with --chain ID, each verified on its own: <id>: 80
    events, seq 1..80; <id>: 50 events, seq 1..50". --chain ID selects
    one; checked before the shipments above, so a central consumer's one
    host name does not read as overlapping shipments. Events without a
    chain label beside one labelled chain (a host that began labelling
    midway, with audit-verify --chain-mark) are taken as that chain's,
    with a note on stderr.
  - --exporter: no event carries the exporter (cursor) name; the message
    says what to use instead.

Do not narrow by tenant: the chain is one for the whole database, and one
tenant's records alone have gaps.

Only VictoriaLogs is supported as the store (--store victorialogs; it
speaks the Splunk HEC, Elasticsearch bulk and Datadog intake protocols, so
it stands in for all three in tests and the demo). For Splunk,
Elasticsearch and Datadog themselves, docs/siem-queries.md gives the export
commands. The store sorts the result; for very large exports narrow --query
(for example by _time).

# Flags

Each flag can also be set as AUDIT_FETCH_<FLAG>.

	-url URL             store base URL (required)
	-kind KIND           what audit-ship shipped: splunk, elastic or datadog
	                     (default: the one kind the query matches; the old
	                     value victorialogs, the store, means the same)
	-host H              only the events of this host: splunk host (audit-ship
	                     --host), datadog hostname (audit-ship --hostname)
	-source S            only the events of this source: splunk source,
	                     datadog ddsource (audit-ship --source)
	-chain ID            only the events of this chain (the chain id: the
	                     recordHash of its first record); required when the
	                     selection holds several chains
	-query LOGSQL        filter selecting the audit events, ANDed with the
	                     above (default *)
	-store victorialogs  the store queried
	-field F             field holding the record line (default _msg)
	-seq-field F         field to sort by (default the --kind's)
	-exporter NAME       refused: no event carries it (see above)
	-timeout D           timeout of the queries (default 5m)

# Output

stdout: the record lines, in seq order. stderr: the kind used when none
was given, the events of other kinds the query matched and left out
("audit-fetch: --kind splunk: the query also matches 150 elastic events,
left out"), and "audit-fetch: N records fetched" (or "0 records fetched:
the query matches no events audit-ship stored").

# Exit codes

0 ok (also when nothing matched), 1 runtime failure (network, HTTP error,
an answer that is not VictoriaLogs'), 2 usage (a bad flag, or a selection
refused as above), 4 a bad result row: not JSON, without the record field,
longer than 1 MiB, a value with a line break or invalid UTF-8, or an event
stored without a message (Elastic's --doc-shape line: ship with
--doc-shape message to have a copy to fetch back). The rows before a bad
row are written out first.

# Example

	audit-ship --kind datadog --url http://127.0.0.1:9428 --api-key env:DD_API_KEY --hostname web1 ...
	audit-fetch --kind datadog --url http://127.0.0.1:9428 --host web1 | audit-verify >/dev/null
*/
package main
