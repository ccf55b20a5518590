#!/usr/bin/env bash
# The chaos suite, full run: every SIEM kind (Splunk HEC, Elasticsearch,
# Datadog fakes behind a toxiproxy) gets CHAOS_DURATION of faults (network,
# SIEM answers, kill -9 / SIGTERM, storage), the three in parallel, then the
# table: faults by kind, records written, delivered, duplicates, lost (must
# be 0), quarantined with reasons, time. go test ./... runs a short version.
#
#   scripts/chaos.sh                       # 150s of faults per SIEM, seed 1
#   CHAOS_DURATION=60s CHAOS_SEED=7 scripts/chaos.sh
#
# Root is needed for the disk-full fault (a tmpfs per SIEM) and the
# read-only database (chattr +i); without it those are skipped and said so.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export CHAOS_DURATION="${CHAOS_DURATION:-150s}"
export CHAOS_SEED="${CHAOS_SEED:-1}"
export CHAOS_MIN_FAULTS="${CHAOS_MIN_FAULTS:-200}"
report="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$report" "$log"' EXIT
export CHAOS_REPORT="$report"
status=0
go test -count=1 -timeout 30m -parallel 3 -run '^TestChaos$' -v ./tests/chaos/ >"$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$log"   # the failures, with the stderr of the processes involved
else
  grep -E '^(---|ok|PASS)|^    --- ' "$log" || true
fi
echo
echo "go test -parallel 3 -run TestChaos ./tests/chaos/ with CHAOS_DURATION=$CHAOS_DURATION CHAOS_SEED=$CHAOS_SEED"
cat "$report" 2>/dev/null || echo "no table: the run failed before it"
exit "$status"
