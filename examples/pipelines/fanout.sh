#!/usr/bin/env bash
# Fan-out: one audit database shipped to Splunk and to Elasticsearch, each
# exporter with its own cursor, its own pipeline and its own acker.
#
#   DB=/var/lib/declaragent/audit.db \
#   HEC_URL=https://hec.example.com:8088 HEC_TOKEN_FILE=/etc/auditpipe/hec.token \
#   ES_URL=https://es.example.com:9200 ES_API_KEY_FILE=/etc/auditpipe/es.key \
#     examples/pipelines/fanout.sh
#
# Why not one audit-read and `tee`?
#
#   audit-read | audit-verify | tee >(ship to Splunk) | ship to Elastic
#
# tee writes every line to both outputs and blocks until both have taken it.
# Pipes are blocking, which is exactly auditpipe's back-pressure: a slow
# SIEM stops its audit-ship reading, its pipe fills, and the stage before it
# blocks. With tee that stage is tee itself, so a Splunk outage (audit-ship
# retrying with backoff, for hours if need be) stops tee, which stops the
# Elasticsearch branch too: one SIEM's bad day stalls every SIEM. Making tee
# not block (dropping, or buffering without bound) would trade the stall for
# loss or for unbounded memory. And there is one cursor for two
# destinations: committing it when one SIEM confirmed loses what the other
# has not got; committing on the slower one replays the faster one on every
# restart.
#
# Separate cursors avoid both. Each exporter (splunk:prod, elastic:prod)
# reads the database on its own from its own committed seq (--from-cursor),
# verifies on its own (re-proving the link to what *it* last shipped), and
# commits only what *its* SIEM confirmed. A slow or dead Splunk holds back
# only the Splunk pipeline: audit-read for splunk:prod stops polling while
# its pipe is full, the Elasticsearch pipeline goes on, and when Splunk is
# back its pipeline resumes from its own cursor. Nothing is lost (each
# cursor moves only after its own acks), and nothing stalls the other side.
# The cost is reading and verifying the database twice: audit-read is a
# read-only WAL reader that never blocks Declaragent, and verification runs
# at several hundred thousand records per second, so for two or three SIEMs
# that is cheap.
#
# If a single read must be had (a database on slow storage, many SIEMs), the
# honest variant is one reader feeding durable per-SIEM spools that each
# shipper drains at its own pace, for instance one pipeline per SIEM into
# `audit-ship --kind file --dir` archives, with the SIEM shippers reading
# those: the disk absorbs one SIEM's outage instead of memory or the other
# SIEM, at the price of disk space proportional to the outage and of a
# second cursor per SIEM (the archive's). This script does not do that.
#
# Each pipeline and each acker runs as its own job (set -m: its own process
# group). A stage that fails ends its own pipeline only; the script then
# stops the other one, then the ackers (after the shippers handed over their
# acks), and exits with the failed pipeline's status for a supervisor to
# restart it; each pipeline resumes from its own cursor. Stop it with one
# SIGTERM or SIGINT to the script itself: it passes one SIGTERM to each
# pipeline (a second would make the stages leave at once, exit 130, without
# their final commit). Under systemd use KillMode=mixed for that reason, or
# simpler, one unit per exporter (see systemd/).
#
# Metrics: each stage serves /metrics on 127.0.0.1, one block of five ports
# per exporter (examples/prometheus/prometheus.yml scrapes these): splunk:prod
# 9464-9468, elastic:prod 9474-9478, in the order audit-read, audit-verify,
# audit-batch, audit-ship, audit-ack (the same as follow-service.sh and
# ack-service.sh under systemd). METRICS=off: none. audit-verify and
# audit-ship keep serving METRICS_LINGER (30s) after they end, so that a
# chain break or a pause is scraped; a stop waits for it.
set -euo pipefail
set -m
PATH="${AUDITPIPE_BIN:-/usr/local/bin}:$PATH"
DB=${DB:?set DB to the audit database}
RUN=${RUN:-/run/auditpipe}
STATE=${STATE:-/var/lib/auditpipe}
mkdir -p "$RUN" "$STATE"

pipes=() ackers=()

# m PORT: the metrics flags for a stage serving on PORT.
m() { [ "${METRICS:-on}" = off ] || echo --metrics-listen "127.0.0.1:$1"; }
linger="--metrics-linger ${METRICS_LINGER:-30s}"
[ "${METRICS:-on}" != off ] || linger=

# exporter NAME SIEM PORT ARGS... : one complete pipeline with its own FIFO
# and acker; its stages serve metrics on PORT..PORT+4.
exporter() {
  local name=$1 siem=$2 port=$3
  shift 3
  local fifo="$RUN/${name//:/-}.acks.fifo"
  [ -p "$fifo" ] || mkfifo -m 600 "$fifo"
  # The names are fixed in this script, so a missing cursor is a new
  # exporter, not a typo: create it (at seq 0) on the first start, or the
  # stages would refuse a name that has no cursor while the other has one.
  audit-cursor show --db "$DB" "$name" >/dev/null 2>&1 || audit-cursor create --db "$DB" "$name"
  # The acker owns this exporter's cursor; it commits what the shipper acks.
  audit-ack --fifo "$fifo" --db "$DB" --exporter "$name" $(m $((port + 4))) &
  ackers+=($!)
  (
    set -o pipefail
    audit-read --db "$DB" --from-cursor "$name" --follow $(m "$port") \
      | audit-verify --db "$DB" --from-cursor "$name" $(m $((port + 1))) $linger \
      | audit-batch --siem "$siem" --metrics-exporter "$name" $(m $((port + 2))) \
      | audit-ship --kind "$siem" "$@" --exporter "$name" --acks "$fifo" \
          --quarantine "$STATE/${name//:/-}.quarantine.ndjson" $(m $((port + 3))) $linger
  ) &
  pipes+=($!)
}

stop() {
  for p in "$@"; do kill -TERM -- "-$p" 2>/dev/null || true; done
}
# One SIGTERM per pipeline, however many signals arrive.
stopped= signalled=
stop_pipes() {
  [ -n "$stopped" ] && return
  stopped=1
  stop "${pipes[@]}"
}
trap 'signalled=1; stop_pipes' INT TERM

exporter splunk:prod splunk 9464 \
  --url "${HEC_URL:?set HEC_URL}" --token "file:${HEC_TOKEN_FILE:?set HEC_TOKEN_FILE}" \
  --index 'declaragent_${tenant:id}'

exporter elastic:prod elastic 9474 \
  --url "${ES_URL:?set ES_URL}" --api-key "file:${ES_API_KEY_FILE:?set ES_API_KEY_FILE}" \
  --index 'declaragent-audit-${date:YYYY.MM.DD}'

# The first pipeline to end (a failure, a pause: exit 6, or a signal) ends
# the other; the ackers stop last, after their final commit.
wait -n "${pipes[@]}" || true
stop_pipes
status=0
for p in "${pipes[@]}"; do wait "$p" || status=$?; done
stop "${ackers[@]}"
for p in "${ackers[@]}"; do wait "$p" || true; done
# Stopped by a signal: every stage stopped cleanly, which is success.
[ -n "$signalled" ] && exit 0
exit "$status"
