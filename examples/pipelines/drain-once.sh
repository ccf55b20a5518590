#!/usr/bin/env bash
# One-shot drain for cron: ship everything after the exporter's cursor, then
# stop. Safe to run again at any time (it resumes from the cursor), and safe
# to kill at any point (nothing is acked that was not delivered).
#
# A crontab line (one line: cron has no `\` continuation; installed by
# scripts/install.sh into /usr/local/share/auditpipe):
#
#   */5 * * * * DB=/var/lib/declaragent/audit.db HEC_URL=https://hec.example.com:8088 HEC_TOKEN_FILE=/etc/auditpipe/hec.token AUDITPIPE_LOCK_DIR=/run/auditpipe /usr/local/share/auditpipe/drain-once.sh
#
# With SINK=file (the default when HEC_URL is unset) it archives to $ARCHIVE.
#
# Cron's PATH is /usr/bin:/bin: the binaries are found in $AUDITPIPE_BIN
# (/usr/local/bin, where scripts/install.sh puts them; install.sh writes its
# --prefix here), put first on PATH.
#
# Quiet when all went well (cron mails any output): the stages' messages are
# kept in a temporary file and printed only when the run fails, followed by
# one line with the exit code of each stage. Exit codes: 0 shipped (or
# nothing to ship), or skipped because a previous drain of the same exporter
# still runs (one line says so, naming its pid: one pipeline per exporter, the
# stages' own lock); otherwise the first failing stage's code (README, "Exit
# codes"; 8: the SIEM stayed unreachable for GIVE_UP_AFTER, nothing lost).
#
# The lock file lives beside the database unless AUDITPIPE_LOCK_DIR says
# otherwise: give this script the same AUDITPIPE_LOCK_DIR as the services on
# the host (the systemd units in systemd/ use /run/auditpipe).
#
# On a database that already has other cursors, a new EXPORTER is refused
# (exit 2, with a did-you-mean) until it is created once:
#   audit-cursor create --db "$DB" splunk:cron     # file:cron for the file sink
set -euo pipefail
PATH="${AUDITPIPE_BIN:-/usr/local/bin}:$PATH"
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
mkdir -p "$(dirname "$QUARANTINE")"
[ -z "${AUDITPIPE_LOCK_DIR:-}" ] || mkdir -p "$AUDITPIPE_LOCK_DIR"
# Short runs end before any scrape: METRICS_DIR (node_exporter's textfile
# directory) gets one .prom file per stage instead.
metrics() { [ -z "${METRICS_DIR:-}" ] || echo --metrics-file "$METRICS_DIR/auditpipe-$1.prom"; }

log=$(mktemp "${TMPDIR:-/tmp}/drain-once.XXXXXX")
trap 'rm -f "$log"' EXIT
# Acks go down the pipe to audit-ack (no FIFO needed for a one-shot run):
# audit-ack commits at EOF, after audit-ship has handed over its last ack.
# A SIEM that stays unreachable ends the run after GIVE_UP_AFTER (exit 8,
# nothing lost: the next run resumes from the cursor), before the next cron
# run starts.
set +e
audit-read --db "$DB" --from-cursor "$EXPORTER" --quiet $(metrics read) 2>>"$log" \
  | audit-verify --db "$DB" --from-cursor "$EXPORTER" --quiet $(metrics verify) 2>>"$log" \
  | audit-batch --siem "$siem" --quiet --metrics-exporter "$EXPORTER" $(metrics batch) 2>>"$log" \
  | audit-ship "${sink[@]}" --exporter "$EXPORTER" --quarantine "$QUARANTINE" --acks - \
      --give-up-after "${GIVE_UP_AFTER:-4m}" --quiet $(metrics ship) 2>>"$log" \
  | audit-ack --db "$DB" --exporter "$EXPORTER" --quiet $(metrics ack) 2>>"$log"
codes=("${PIPESTATUS[@]}")
set -e
status=0
for c in "${codes[@]}"; do
  # The first failure is the cause; the 141s after it are stages that saw
  # their downstream go.
  if [ "$c" -ne 0 ] && { [ "$status" -eq 0 ] || [ "$status" -eq 141 ]; }; then status=$c; fi
done
[ "$status" -eq 0 ] && exit 0
# Refused because another drain of this exporter holds it: not a failure.
if [ "${codes[0]}" -eq 2 ] && grep -q 'is in use by another pipeline' "$log"; then
  echo "drain-once: skipped: $(grep -m1 'is in use by another pipeline' "$log")" >&2
  exit 0
fi
cat "$log" >&2
echo "drain-once: $EXPORTER failed, exit $status (read verify batch ship ack: ${codes[*]}); the next run resumes from the cursor" >&2
exit "$status"
