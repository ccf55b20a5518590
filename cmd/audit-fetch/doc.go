/*
audit-fetch reads audit records back out of a log store's search API and
writes them as record lines in seq order: the forensic round trip, proving
that what the SIEM holds is the chain that was shipped.

Synopsis:

	audit-fetch --kind victorialogs --url URL [--query LOGSQL] [--field F] [--seq-field F]

# How it works

audit-ship sends each record line as the event text (Splunk's _raw,
VictoriaLogs' _msg) and its seq as an indexed field. audit-fetch queries
`QUERY | sort by (SEQFIELD) | fields FIELD` and writes each FIELD value as
one line, unchanged, so audit-verify re-checks the chain on the fast path.

Only VictoriaLogs is supported in this version (it speaks the Splunk HEC,
Elasticsearch bulk and Datadog intake protocols, so it stands in for all
three in tests and the demo). The store sorts the result; for very large
exports narrow --query (for example by _time).

# Flags

Each flag can also be set as AUDIT_FETCH_<FLAG>.

	-kind victorialogs   store kind
	-url URL             store base URL
	-query LOGSQL        filter selecting the audit events (default *)
	-field F             field holding the record line (default _msg)
	-seq-field F         field holding the seq (default fields.seq, as the HEC sink writes it)
	-timeout D           query timeout (default 5m)

# Exit codes

0 ok, 1 runtime failure (network, HTTP error), 2 usage, 4 a bad result
row: not JSON, without the record field, longer than 1 MiB, or a value with
a line break or invalid UTF-8 (the rows before it are written out first).

# Example

	audit-fetch --kind victorialogs --url http://127.0.0.1:9428 | audit-verify >/dev/null
*/
package main
