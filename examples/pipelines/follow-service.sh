#!/usr/bin/env bash
# Follow mode as a long-running service: tail new rows as Declaragent commits
# them and ship them continuously. The acker runs as its own unit
# (ack-service.sh, see systemd/), reading the FIFO, so either side can
# restart independently. scripts/install.sh puts both in
# /usr/local/share/auditpipe, where the units run them.
#
# A stage that fails ends the pipeline (pipefail); systemd restarts it, and
# it resumes from the cursor, re-proving the link to the last shipped record.
#
# Metrics: each stage serves /metrics on 127.0.0.1, from METRICS_PORT up
# (the convention in examples/prometheus/prometheus.yml: splunk:prod 9464,
# elastic:prod 9474): audit-read +0, audit-verify +1, audit-batch +2,
# audit-ship +3, and audit-ack (ack-service.sh) +4. METRICS_PORT=off: none.
# audit-verify and audit-ship exit on a finding or a pause: they keep serving
# for METRICS_LINGER (30s, longer than the scrape interval) so that the value
# that matters is scraped; a stop waits for it (TimeoutStopSec=45).
set -euo pipefail
PATH="${AUDITPIPE_BIN:-/usr/local/bin}:$PATH"
DB=${DB:?set DB to the audit database}
EXPORTER=${EXPORTER:-splunk:prod}
FIFO=${FIFO:-/run/auditpipe/acks.fifo}
port=${METRICS_PORT:-9464}
m() { [ "$port" = off ] || echo --metrics-listen "127.0.0.1:$((port + $1))"; }
linger="--metrics-linger ${METRICS_LINGER:-30s}"
[ "$port" != off ] || linger=
# systemd's stop sends SIGTERM to every process of the unit: the stages stop
# cleanly; the script waits for them and exits with the pipeline's status.
trap : TERM INT
audit-read --db "$DB" --from-cursor "$EXPORTER" --follow $(m 0) \
  | audit-verify --db "$DB" --from-cursor "$EXPORTER" $(m 1) $linger \
  | audit-batch --siem splunk --metrics-exporter "$EXPORTER" $(m 2) \
  | audit-ship --kind splunk --url "${HEC_URL:?set HEC_URL}" --token "file:${HEC_TOKEN_FILE:?set HEC_TOKEN_FILE}" \
      --exporter "$EXPORTER" --acks "$FIFO" --quarantine "${QUARANTINE:-/var/lib/auditpipe/quarantine.ndjson}" $(m 3) $linger
