#!/usr/bin/env bash
# Follow mode as a long-running service: tail new rows as Declaragent commits
# them and ship them continuously. The acker runs as its own unit (see
# systemd/), reading the FIFO, so either side can restart independently.
#
# A stage that fails ends the pipeline (pipefail); systemd restarts it, and
# it resumes from the cursor, re-proving the link to the last shipped record.
set -euo pipefail
DB=${DB:?set DB to the audit database}
EXPORTER=${EXPORTER:-splunk:prod}
FIFO=${FIFO:-/run/auditpipe/acks.fifo}
audit-read --db "$DB" --from-cursor "$EXPORTER" --follow \
  | audit-verify --db "$DB" --from-cursor "$EXPORTER" \
  | audit-batch --siem splunk \
  | audit-ship --kind splunk --url "${HEC_URL:?set HEC_URL}" --token "file:${HEC_TOKEN_FILE:?set HEC_TOKEN_FILE}" \
      --exporter "$EXPORTER" --acks "$FIFO" --quarantine "${QUARANTINE:-/var/lib/auditpipe/quarantine.ndjson}"
