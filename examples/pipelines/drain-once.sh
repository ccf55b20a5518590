#!/usr/bin/env bash
# One-shot drain for cron: ship everything after the exporter's cursor, then
# stop. Safe to run again at any time (it resumes from the cursor), and safe
# to kill at any point (nothing is acked that was not delivered).
#
#   */5 * * * *  DB=/var/lib/declaragent/audit.db HEC_URL=https://hec.example.com:8088 \
#                HEC_TOKEN_FILE=/etc/auditpipe/hec.token /opt/auditpipe/examples/pipelines/drain-once.sh
#
# With SINK=file (the default when HEC_URL is unset) it archives to $ARCHIVE.
#
# One pipeline per exporter: if the previous run (or a service on the same
# exporter) still runs, this one is refused at once (exit 2, naming its pid).
# The lock file lives beside the database unless AUDITPIPE_LOCK_DIR says
# otherwise: give this script the same AUDITPIPE_LOCK_DIR as the services on
# the host (the systemd units in systemd/ use /run/auditpipe).
set -euo pipefail
DB=${DB:?set DB to the audit database}
EXPORTER=${EXPORTER:-splunk:cron}
ARCHIVE=${ARCHIVE:-/var/lib/auditpipe/archive}
QUARANTINE=${QUARANTINE:-/var/lib/auditpipe/quarantine.ndjson}
if [ -n "${HEC_URL:-}" ]; then
  sink=(--kind splunk --url "$HEC_URL" --token "file:${HEC_TOKEN_FILE:?set HEC_TOKEN_FILE}")
  siem=splunk
else
  EXPORTER=${EXPORTER/splunk:/file:}
  mkdir -p "$ARCHIVE"
  sink=(--kind file --path "$ARCHIVE" --dir --gzip)
  siem=file
fi
# Acks go down the pipe to audit-ack (no FIFO needed for a one-shot run):
# audit-ack commits at EOF, after audit-ship has handed over its last ack.
# A SIEM that stays unreachable ends the run after GIVE_UP_AFTER (exit 8,
# nothing lost: the next run resumes from the cursor), before the next cron
# run starts.
audit-read --db "$DB" --from-cursor "$EXPORTER" \
  | audit-verify --db "$DB" --from-cursor "$EXPORTER" \
  | audit-batch --siem "$siem" \
  | audit-ship "${sink[@]}" --exporter "$EXPORTER" --quarantine "$QUARANTINE" --acks - \
      --give-up-after "${GIVE_UP_AFTER:-4m}" \
  | audit-ack --db "$DB" --exporter "$EXPORTER"
