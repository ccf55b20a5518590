#!/usr/bin/env bash
# Throughput of auditpipe on this machine, each figure beside a baseline
# measured in the same run (the machine is shared and noisy: compare ratios).
#
#   scripts/bench.sh [N [PART]]  N records (default 1000000), ~500-byte events;
#                                PART (stages or pipeline) runs only that half
#
# Measures, on one database of N records:
#   read       audit-read --db > /dev/null                      vs  sqlite3 CLI dumping the same rows
#   verify     audit-verify (fast path: canonical bytes)        vs  openssl sha256 over the same bytes
#   slow path  audit-verify on re-serialised records             (canonicalise, then hash)
#   pipeline   read | verify | batch | ship --kind splunk (gzip, 4 in flight) into a discarding
#              loopback HEC receiver, acks to audit-ack          vs  the shell a user might write:
#              sqlite3 json | gzip -1 | curl (no verify, no cursor, one request)
#   BENCH_ALL=1 adds: the pipeline with ship --gzip=false vs the shell without gzip, and
#              read | verify | ship | ack (audit-ship batching itself) vs the gzip shell
# and the peak RSS of every stage (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${1:-1000000}
PART=${2:-all}
case $PART in all|stages|pipeline) ;; *) echo "bench: PART must be stages or pipeline, not $PART" >&2; exit 2;; esac
dir=.bench; mkdir -p "$dir"
bin=$dir/bin
go build -o "$bin/" ./cmd/... ./internal/tools/...
db=$dir/audit-$N.db
if [ ! -s "$db" ]; then
  echo "bench: generating $N records into $db" >&2
  rm -f "$db"*
  "$bin/audit-sample" --count "$N" | "$bin/audit-append" --db "$db" --batch 5000 --quiet
fi
lines=$dir/lines-$N.ndjson
[ -s "$lines" ] || "$bin/audit-read" --db "$db" --quiet > "$lines"
slow=$dir/reserialised-$N.ndjson
[ -s "$slow" ] || "$bin/reserialize" < "$lines" > "$slow"
mb=$(( $(stat -L -c %s "$lines") / 1000000 ))
# Every input into the page cache first, so no figure below includes disk reads.
cat "$db" "$lines" "$slow" > /dev/null

t() { # t CMD: wall seconds, peak RSS (KiB, the largest process) and CPU seconds of CMD, into $secs, $rss, $cpus
  if ! /usr/bin/time -o "$dir/time.out" -f '%e %M %U %S' bash -o pipefail -c "$*" >/dev/null 2>"$dir/cmd.err"; then
    echo "bench: failed: $*" >&2; tail -5 "$dir/cmd.err" >&2; exit 1
  fi
  read -r secs rss u sy < "$dir/time.out"
  cpus=$(awk -v u="$u" -v s="$sy" 'BEGIN { print u + s }')
}
rate() { awk -v n="$N" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() { # name, wall seconds, RSS KiB: wall rate, and the rate per CPU-second (steadier on a shared machine)
  printf '%-46s %7s s %9s rec/s %9s rec/cpu-s %5s MiB\n' "$1" "$2" "$(rate "$2")" "$(rate "${cpus:-0}")" "$(( ${3:-0} / 1024 ))"
}

echo "== $N records, $mb MB of record lines; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PART" != pipeline ]; then
t "$bin/audit-read --db $db --quiet";                        r_secs=$secs; row "audit-read --db" "$secs" "$rss"
if command -v sqlite3 >/dev/null; then
  t "sqlite3 $db 'select seq, ts, tenant_id, kind, record_json, prev_hash, record_hash from audit_records order by seq'"
  b_secs=$secs; row "  baseline: sqlite3 CLI select of the rows" "$secs" "$rss"
  echo "  ratio audit-read / sqlite3 CLI speed: $(ratio "$b_secs" "$r_secs")"
fi
t "$bin/audit-verify --quiet < $lines";                       v_secs=$secs; row "audit-verify (fast path)" "$secs" "$rss"
t "openssl dgst -sha256 $lines";                              o_secs=$secs; row "  baseline: openssl sha256 of the same bytes" "$secs" "$rss"
t "sha256sum $lines";                                         c_secs=$secs; row "  baseline: sha256sum of the same bytes" "$secs" "$rss"
echo "  ratio audit-verify / openssl speed: $(ratio "$o_secs" "$v_secs"); audit-verify / sha256sum: $(ratio "$c_secs" "$v_secs")"
echo "  (openssl uses SHA-NI; this coreutils sha256sum does not. audit-verify checks every line's fields and hashes every record)"
t "$bin/audit-verify --quiet < $slow";                        row "audit-verify (slow path: re-serialised)" "$secs" "$rss"
t "$bin/audit-read --db $db --quiet | $bin/audit-verify --quiet"; row "audit-read | audit-verify" "$secs" "$rss"
fi
[ "$PART" != stages ] || exit 0

# The whole pipeline into a discarding HEC receiver on loopback.
rm -f "$dir/hec.addr"
"$bin/hecnull" --port-file "$dir/hec.addr" 2>"$dir/hecnull.log" & hec=$!
trap 'kill $hec 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$dir/hec.addr" ] && break; sleep 0.1; done
url="http://$(cat "$dir/hec.addr")"
export BENCH_HEC_TOKEN=bench
rm -f "$dir/acks.db"*; cp "$db" "$dir/acks.db"
stage_rss() { # each stage's peak RSS and CPU seconds, from GNU time wrapped around it
  printf '/usr/bin/time -o %s/rss-%s -f "%%M %%U %%S" ' "$dir" "$1"
}
pipeline() { # pipeline NAME EXPORTER BATCH(yes|no) SHIP-FLAGS...: one run of the whole loop, each exporter its own cursor
  local name=$1 exp=$2 batch=$3; shift 3
  local stages="read verify batch ship ack"
  # Each run is a new exporter on a database that has the others' cursors: --new-cursor.
  local cmd="$(stage_rss read)$bin/audit-read --db $dir/acks.db --from-cursor $exp --new-cursor --quiet \
   | $(stage_rss verify)$bin/audit-verify --db $dir/acks.db --from-cursor $exp --new-cursor --quiet"
  if [ "$batch" = yes ]; then cmd="$cmd | $(stage_rss batch)$bin/audit-batch --siem splunk --quiet"; else stages="read verify ship ack"; fi
  cmd="$cmd | $(stage_rss ship)$bin/audit-ship --kind splunk --url $url --token env:BENCH_HEC_TOKEN --exporter $exp --acks - --quiet $* \
   | $(stage_rss ack)$bin/audit-ack --db $dir/acks.db --exporter $exp --new-cursor --quiet"
  t "$cmd"; p_secs=$secs
  row "$name" "$secs" 0
  printf '  peak RSS per stage (MiB):'
  local cpu=0 percpu="" s kb u sy
  for s in $stages; do
    read -r kb u sy < "$dir/rss-$s"
    printf ' %s=%s' "$s" "$(( kb / 1024 ))"
    cpu=$(awk -v a="$cpu" -v u="$u" -v s="$sy" 'BEGIN { print a + u + s }')
    percpu="$percpu $s=$(awk -v n="$N" -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", (u + s) * 1e6 / n }')"
  done; echo
  echo "  CPU per record by stage (us):$percpu; total $(awk -v n="$N" -v c="$cpu" 'BEGIN { printf "%.2f", c * 1e6 / n }') us"
  echo "  so the CPU-bound ceiling on $(nproc) cores is $(awk -v n="$N" -v c="$cpu" -v k="$(nproc)" 'BEGIN { printf "%.0f", k * n / c }') records/s (the wall figure is lower while other work shares the cores)"
  local cur; cur=$(sqlite3 "$dir/acks.db" "select last_seq from audit_export_cursor where exporter_name='$exp'" 2>/dev/null || echo '?')
  echo "  cursor after the run: $cur (of $N)"
}
shell_json="sqlite3 $db \"select json_object('time', ts/1000.0, 'event', json(record_json), 'fields', json_object('seq', seq, 'recordHash', record_hash)) from audit_records where seq > 0 order by seq\""
hec_curl="curl -s -o /dev/null --data-binary @- -H 'Authorization: Splunk bench' $url/services/collector/event"

# 1. The design card's pipeline as shipped: gzip on, against the shell with gzip.
pipeline "pipeline read|verify|batch|ship|ack (HEC, gzip)" splunk:bench yes
g_secs=$p_secs
t "$shell_json | gzip -1 | $hec_curl -H 'Content-Encoding: gzip'"
s_secs=$secs; row "  baseline: sqlite3 | gzip -1 | curl" "$secs" "$rss"
echo "  ratio pipeline / shell baseline speed: $(ratio "$s_secs" "$g_secs")"
[ "${BENCH_ALL:-}" = 1 ] || exit 0

# 2. Without compression (a HEC on the same host, where gzip only costs CPU), against the shell without gzip.
pipeline "pipeline, ship --gzip=false" splunk:bench-plain yes --gzip=false
u_secs=$p_secs
t "$shell_json | $hec_curl"
s2_secs=$secs; row "  baseline: sqlite3 | curl (no gzip)" "$secs" "$rss"
echo "  ratio pipeline / shell baseline speed, both without gzip: $(ratio "$s2_secs" "$u_secs")"

# 3. Without the audit-batch process (audit-ship batches plain record lines itself), gzip on.
pipeline "pipeline read|verify|ship|ack (ship batches; gzip)" splunk:bench-3 no
echo "  ratio to the gzip shell baseline: $(ratio "$s_secs" "$p_secs")"
