#!/usr/bin/env bash
# The chaos suite, full run, in two parts.
#
# Random faults (TestChaos): every SIEM kind (Splunk HEC, Elasticsearch,
# Datadog fakes behind a toxiproxy) gets CHAOS_DURATION of faults (network,
# SIEM answers, kill -9 / SIGTERM, storage), the three in parallel, then the
# table: faults by kind, records written, delivered, duplicates, lost (must
# be 0), quarantined with reasons, time.
#
# Operational faults (TestChaosOps, tests/chaos/ops_test.go): restarts while
# acks commit (CHAOS_OPS_RESTARTS, 60), faults while the log is quiet,
# SIGTERM to single stages in each waiting state, the database replaced
# under --follow (same chain: must go on; another chain: must stop naming a
# replaced database), the ack FIFO replaced, overlapping one-shot drains;
# each but the restarts CHAOS_OPS_REPEAT (3) times. Its table, then the
# closing line: false findings (must be 0), lost records (0), duplicates,
# stalls (0), and the slowest exit after a closed output or a first
# SIGTERM (at most CHAOS_EXIT_BOUND, 2s).
#
# go test ./tests/chaos runs a short version of both (-short skips them).
#
#   scripts/chaos.sh                       # 150s of faults per SIEM, seed 1, then the operational faults
#   CHAOS_DURATION=60s CHAOS_SEED=7 scripts/chaos.sh
#   CHAOS_PART=ops scripts/chaos.sh        # only the operational faults (random: only the random ones)
#
# Root is needed for the disk-full fault (a tmpfs per SIEM) and the
# read-only database (chattr +i); without it those are skipped and said so.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export CHAOS_DURATION="${CHAOS_DURATION:-150s}"
export CHAOS_SEED="${CHAOS_SEED:-1}"
export CHAOS_MIN_FAULTS="${CHAOS_MIN_FAULTS:-200}"
export CHAOS_OPS_RESTARTS="${CHAOS_OPS_RESTARTS:-60}"
export CHAOS_OPS_REPEAT="${CHAOS_OPS_REPEAT:-3}"
export CHAOS_EXIT_BOUND="${CHAOS_EXIT_BOUND:-2s}"
part="${CHAOS_PART:-all}"
report="$(mktemp)"
opsreport="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$report" "$opsreport" "$log"' EXIT
export CHAOS_REPORT="$report" CHAOS_OPS_REPORT="$opsreport"
status=0

run() { # name of the test
  local st=0
  go test -count=1 -timeout 60m -parallel 3 -run "^$1\$" -v ./tests/chaos/ >"$log" 2>&1 || st=$?
  if [ "$st" -ne 0 ]; then
    cat "$log"   # the failures, with the stderr of the processes involved
    [ "$status" -ne 0 ] || status=$st
  else
    grep -E '^(---|ok|PASS)|^    --- ' "$log" || true
  fi
}

if [ "$part" != ops ]; then
  run TestChaos
  echo
  echo "go test -parallel 3 -run TestChaos ./tests/chaos/ with CHAOS_DURATION=$CHAOS_DURATION CHAOS_SEED=$CHAOS_SEED"
  cat "$report" 2>/dev/null || echo "no table: the run failed before it"
fi
if [ "$part" != random ]; then
  echo
  run TestChaosOps
  echo
  echo "go test -run TestChaosOps ./tests/chaos/ with CHAOS_OPS_RESTARTS=$CHAOS_OPS_RESTARTS CHAOS_OPS_REPEAT=$CHAOS_OPS_REPEAT CHAOS_EXIT_BOUND=$CHAOS_EXIT_BOUND CHAOS_SEED=$CHAOS_SEED"
  if [ -s "$opsreport" ]; then
    cat "$opsreport"
  else
    echo "operational faults: no table, the run failed before it"
  fi
fi
exit "$status"
