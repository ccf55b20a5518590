/*
audit-consume is the central side of a fleet through Kafka (issue 15): it
reads the topic the hosts ship to, in a consumer group, and writes the
record lines of many chains for audit-verify, committing offsets only for
what the SIEM has confirmed.

Synopsis:

	audit-consume --brokers HOST:PORT,... --topic TOPIC --group GROUP --acks FIFO [flags]
	audit-consume --brokers HOST:PORT,... --group GROUP --set-anchor CHAIN=SEQ:HASH

A pipeline per SIEM, one consumer group each:

	audit-consume --brokers k1:9092,k2:9092 --topic audit --group splunk-prod --acks /run/auditpipe/acks.fifo |
	  audit-verify --holds /run/auditpipe/acks.fifo | audit-batch |
	  audit-ship --kind splunk --exporter splunk:prod --acks /run/auditpipe/acks.fifo

# Input

Kafka records written by audit-ship --kind kafka: the value is one record
line (docs/contract.md section 2) byte for byte; the key is the chain id
(the recordHash of the chain's first record, or an override: 1 to 128
bytes of [A-Za-z0-9._:-]); a "chain" header is used when the key is not a
chain id. The record's seq is read from the line itself. A Kafka record
with no chain id, or whose value is not one JSON line with a seq, is not a
record of any chain: it is named on stderr (topic, partition, offset, why)
and not written. A real record that went missing that way is a seq_gap to
audit-verify, never a silent loss.

The --acks FIFO (created if missing, opened read-write so that a shipper's
restart is not an end of file) carries two kinds of lines:

  - ack lines, as audit-ack reads them (lib/framing.ParseAck; moving to
    lib/ack), with a "chain" field naming the chain the ack is for:
    {"ack":{"exporter":"splunk:prod","chain":"<id>","firstSeq":1,"lastSeq":9,"lastHash":"<64 hex>","count":9,"quarantined":[]}}
    An ack without "chain" is reported once and not applied.
  - hold lines from audit-verify --holds: {"hold":{"chain":"<id>","seq":17,"reason":"hash_mismatch"}}

# Output

On stdout, record lines exactly as the Kafka values hold them (plus a
newline), each run of one chain's records after a chain mark:

	{"mark":{"type":"chain","chain":"<id>","seq":41,"hash":"<64 hex>"}}    the first time a chain is written after an assignment
	{"mark":{"type":"chain","chain":"<id>"}}                             before each later run of its records

The first carries the chain's anchor when the group has one: the last seq
delivered and its recordHash, so that audit-verify resumes the chain there
and never from the middle unanchored. A chain without an anchor must start
at seq 1 (the genesis rule), else audit-verify holds it. Records at or below
a chain's anchor were delivered before and are not written again.

Each chain keeps its order: the producer keys records by chain, so a chain
is in one partition, read in order. Chains that share a partition arrive
interleaved; what one fetch returned is written as one run per chain (each
chain's records in order), so chain marks stay few and the batches
audit-batch cuts at them stay full (a record-by-record interleave of 3
chains, 180 records, gives 3 runs, not 180). The order across chains
means nothing downstream: offsets are committed by acks.

# Offsets and anchors

A partition's offset is committed only up to its lowest record not yet
delivered: acked on the --acks FIFO, in any order across chains. Before
each commit the anchors of the chains acked since the last one are written
to --anchors-topic (a compacted topic, one partition, created if missing;
key "<group>/<chain>", value {"group","chain","seq","hash","at"}) and
acked by Kafka. Anchors are per group, so each SIEM resumes each chain from
what it itself confirmed.

Why a Kafka topic: the consumers of a group move between hosts (pods of a
Deployment have no disk that follows them; a rebalance hands a partition,
and its chains, to another consumer), and the anchors must follow the
chains, as durable as the records. The offset commit's metadata is per
partition and capped (4 KiB by default), while a partition carries many
chains. Compaction keeps the topic as small as the fleet.

Why before the commit: a crash between the two leaves the anchors ahead of
the offsets, so the records read again are at or below their chain's anchor
and are skipped as delivered. An offset committed before its anchor would
make a chain resume unanchored.

On start and after each rebalance the group's anchors are read back (every
chain of the partitions assigned resumes from its stored anchor); the
partitions revoked first commit what was acked (anchors first).

# Held chains

When audit-verify holds a chain (tampered, or first seen mid-way without
an anchor), no ack will come for its records. Its hold line takes them out
of the in-flight count, so the other chains keep flowing, and pins the
partition's committed offset at the chain's first record not delivered:
nothing of it is lost or silently acked. A restart reads the partition from
that offset again: the other chains' records there are skipped by their
anchors, and the held chain is held again (fail closed across restarts).

The operator's fix, once the host is investigated: if the chain's records in
the database are intact (the topic was tampered with), re-ship them from the
host and produce nothing else; if the break is real and accepted (the
record is known lost), anchor the chain past it by hand, for each group:

	audit-consume --brokers ... --group splunk-prod --set-anchor <chain>=<seq>:<recordHash of seq>

then restart the consumer: the chain resumes after that seq (its records
up to it are skipped; the next must link to the hash given). The anchor is
a human decision and stays in the anchors topic (with its time).

Without audit-verify --holds, a held chain's records stay in flight: the
--max-in-flight bound then fills and the consumer stops fetching.

# Back-pressure

At most --max-in-flight records are written and not yet acked; then
fetching stops (the topic's partitions are paused) until acks come. Memory
is bounded by that and by the client's fetch buffers.

# Flags

Each flag can also be set through the environment as AUDIT_CONSUME_<FLAG>
(upper case, dashes as underscores), or in a file named by -config.

	-brokers LIST          bootstrap brokers, comma-separated HOST:PORT (required)
	-topic NAME            the topic (required, except with -set-anchor)
	-group NAME            consumer group: one per SIEM (required)
	-acks PATH             the ack FIFO (required, except with -set-anchor)
	-anchors-topic NAME    the anchors topic (default auditpipe-anchors)
	-max-in-flight N       records written and not acked at most (default 10000)
	-commit-interval D     how often anchors are stored and offsets committed (default 1s)
	-session-timeout D     group session timeout (default 45s): how long a consumer that died
	                       without leaving keeps its partitions
	-drain D               on SIGTERM, how long to wait for acks of the records in flight (default 10s)
	-client-id ID          Kafka client id (default audit-consume)
	-set-anchor C=SEQ:HASH store the group's anchor of chain C and exit
	-quiet                 no summary line at exit

TLS and SASL, the flags of audit-ship --kind kafka (lib/kafka, the same
rules and messages):

	-tls                   connect with TLS (implied by the three files and -insecure-skip-verify)
	-ca-file PATH          PEM CA bundle to verify the brokers with (default: the system's)
	-cert-file PATH        PEM client certificate (mutual TLS), with -key-file
	-key-file PATH         PEM client key
	-insecure-skip-verify  do not verify the brokers' certificates (tests only)
	-sasl MECH             plain, scram-sha-256 or scram-sha-512, with -username and -password
	-username NAME         SASL user name (not a secret)
	-password REF          SASL password reference: env:NAME, file:PATH or exec:COMMAND,
	                       read again on every new connection (a rotated file is picked up)
	-allow-insecure-sasl   allow SASL PLAIN to a non-loopback broker without TLS
	-secret-timeout D      how long an exec: reference may run (default 10s)

A SASL mechanism without a user name or password, a password without a
mechanism, an unknown mechanism, or PLAIN without TLS to a non-loopback
broker is a usage error (exit 2) naming the flags; a login the brokers
refuse is a runtime failure (exit 1).

Metrics (-metrics-listen ADDR, -metrics-file PATH, -metrics-exporter NAME,
-metrics-linger D, as every stage; the exporter label defaults to -group):

	auditpipe_records_out_total          record lines written to stdout
	auditpipe_consume_acks_total         ack lines taken from the -acks FIFO
	auditpipe_consume_commits_total      offset commits that succeeded (anchors stored first)
	auditpipe_consume_inflight_records   records written and not acked (at -max-in-flight fetching stops)
	auditpipe_consume_held_chains        chains held by audit-verify (their partitions' offsets pinned)

Alert on auditpipe_consume_held_chains > 0 (with audit-verify's
auditpipe_verify_breaks_total{reason="chain_held"}), and on
auditpipe_consume_inflight_records at -max-in-flight for minutes (the
SIEM or the shipper stalls).

The group starts a partition it has never committed at its earliest offset.

# Exit codes

	0    stopped by SIGINT or SIGTERM (after the last commit), or -set-anchor stored
	1    runtime failure: Kafka unreachable or refusing (a fetch error that is not retriable),
	     the anchors could not be stored at the end
	2    usage: flags, the -acks FIFO cannot be made or opened
	141  stdout closed by the next stage (quiet)

# Signals

The first SIGINT or SIGTERM stops fetching, waits up to -drain for the acks
of the records in flight, stores the anchors, commits the offsets of what
was acked, leaves the group and exits 0. A second one exits at once (130 or
143): what was not committed is read again by the group (duplicates, never
loss). SIGKILL is the same: the group's next consumer resumes each chain from
the anchors stored and the offsets committed, at-least-once.

When stdout's reader goes away (audit-verify exited) audit-consume stops at
once, commits what was acked and exits 141.
*/
package main
