#!/usr/bin/env bash
# Resume after a crash, demonstrated: ship part of a sample log, kill -9 the
# shipper mid-stream, restart, and show that the restart re-verifies the link
# to the last shipped record and that every record arrived (some twice: the
# batches in flight at the crash; none lost).
# Runs on the file sink, so it needs nothing but the binaries (bin/).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/bin:$PATH"
[ -x bin/audit-read ] || go build -o bin/ ./cmd/...
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
db=$work/audit.db; exp=file:crashdemo

audit-sample --count 50000 | audit-append --db "$db" --quiet

run() {
  audit-read --db "$db" --from-cursor $exp --quiet \
    | audit-verify --db "$db" --from-cursor $exp \
    | audit-batch --siem file --max-count 200 --quiet \
    | audit-ship --kind file --path "$work/out.ndjson" --exporter $exp --acks - --quiet \
    | audit-ack --db "$db" --exporter $exp --commit-interval 10ms
}

echo "== first run, killed with SIGKILL after 0.3 s" >&2
( run ) & pid=$!
sleep 0.3
pkill -KILL -f "audit-ship --kind file --path $work/out.ndjson" || true
wait $pid || true
echo "cursor after the crash: $(sqlite3 "$db" "select last_seq from audit_export_cursor where exporter_name='$exp'" 2>/dev/null || echo '?')" >&2

echo "== restart: resumes from the cursor and proves the link" >&2
run

total=$(wc -l < "$work/out.ndjson")
distinct=$(audit-read --quiet "$work/out.ndjson" | sort -u | wc -l)
echo "== delivered lines: $total, distinct records: $distinct of 50000 (duplicates: $((total - distinct)))" >&2
[ "$distinct" -eq 50000 ]
