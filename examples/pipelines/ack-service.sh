#!/usr/bin/env bash
# The acker of follow-service.sh as a service (systemd/auditpipe-ack@.service):
# reads the acks from FIFO and commits EXPORTER's cursor in DB. Its metrics
# are on 127.0.0.1:METRICS_PORT+4 (see follow-service.sh).
set -euo pipefail
PATH="${AUDITPIPE_BIN:-/usr/local/bin}:$PATH"
DB=${DB:?set DB to the audit database}
EXPORTER=${EXPORTER:-splunk:prod}
FIFO=${FIFO:-/run/auditpipe/acks.fifo}
port=${METRICS_PORT:-9464}
m=()
[ "$port" = off ] || m=(--metrics-listen "127.0.0.1:$((port + 4))")
exec audit-ack --fifo "$FIFO" --db "$DB" --exporter "$EXPORTER" "${m[@]}"
