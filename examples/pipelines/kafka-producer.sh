#!/usr/bin/env bash
# One host of a fleet (docs/fleet.md): tail this host's audit database and
# produce every record to Kafka, keyed by the database's chain id, acks
# committed to the cursor once Kafka acked every record of a batch. Run by
# auditpipe-kafka@.service (systemd/), one unit per database; the central
# side (audit-consume | audit-verify | audit-ship, docs/fleet.md) reads the
# topic. scripts/install.sh puts it in /usr/local/share/auditpipe.
#
# Environment (kafka.env.example):
#   DB             the audit database
#   KAFKA_BROKERS  host:port[,host:port...]
#   KAFKA_TOPIC    the fleet's topic (created beforehand; docs/fleet.md, "Sizing partitions")
#   EXPORTER       the cursor, kafka:<name> (default kafka:fleet)
#   CHAIN_ID       the chain id (default: the recordHash of the database's seq 1,
#                  read here; set it for a database whose first row is gone)
#   KAFKA_TLS=1, KAFKA_CA_FILE, KAFKA_SASL (plain|scram-sha-256|scram-sha-512),
#   KAFKA_USERNAME, KAFKA_PASSWORD_FILE   TLS and SASL, when the cluster needs them
#   METRICS_PORT   read, verify, ship, ack on 127.0.0.1 from it up; off: none
#
# audit-ship runs right after audit-verify (it batches itself: audit-batch
# would drop the marks that carry the chain id). audit-ack reads the acks
# on the pipe: one unit, one exporter lock, either stage's failure restarts
# the whole loop from the cursor (duplicates in Kafka at worst, which the
# central verifier drops by seq; never a gap).
set -euo pipefail
PATH="${AUDITPIPE_BIN:-/usr/local/bin}:$PATH"
DB=${DB:?set DB to the audit database}
EXPORTER=${EXPORTER:-kafka:fleet}
: "${KAFKA_BROKERS:?set KAFKA_BROKERS to host:port[,host:port...]}"
: "${KAFKA_TOPIC:?set KAFKA_TOPIC}"
port=${METRICS_PORT:-9484}
m() { [ "$port" = off ] || echo --metrics-listen "127.0.0.1:$((port + $1))"; }
# The chain id is the recordHash of seq 1 (docs/contract.md section 5). An
# empty database has none yet: its first record, seq 1, names it itself.
if [ -z "${CHAIN_ID:-}" ]; then
  CHAIN_ID=$(audit-read --db "$DB" --to-seq 1 --marks never --quiet | sed -n 's/.*"seq":1,.*"prevHash":"","recordHash":"\([0-9a-f]\{64\}\)".*/\1/p')
fi
kafka=(--kind kafka --brokers "$KAFKA_BROKERS" --topic "$KAFKA_TOPIC")
[ -z "${CHAIN_ID:-}" ] || kafka+=(--chain-id "$CHAIN_ID")
[ "${KAFKA_TLS:-}" != 1 ] || kafka+=(--tls)
[ -z "${KAFKA_CA_FILE:-}" ] || kafka+=(--ca-file "$KAFKA_CA_FILE")
[ -z "${KAFKA_SASL:-}" ] || kafka+=(--sasl "$KAFKA_SASL" --username "${KAFKA_USERNAME:?set KAFKA_USERNAME}" --password "file:${KAFKA_PASSWORD_FILE:?set KAFKA_PASSWORD_FILE}")
# systemd's stop sends SIGTERM to every process of the unit: the stages stop
# cleanly; the script waits for them and exits with the pipeline's status.
trap : TERM INT
audit-read --db "$DB" --from-cursor "$EXPORTER" --new-cursor --follow $(m 0) \
  | audit-verify --db "$DB" --from-cursor "$EXPORTER" --new-cursor $(m 1) \
  | audit-ship "${kafka[@]}" --exporter "$EXPORTER" --acks - $(m 2) \
  | audit-ack --db "$DB" --exporter "$EXPORTER" --new-cursor $(m 3)
