#!/usr/bin/env bash
# Throughput of auditpipe on this machine, each figure beside a baseline
# measured in the same run (the machine is shared and noisy: compare ratios).
#
#   scripts/bench.sh [N [PART]]  N records (default 1000000), ~750-byte record lines;
#                                PART (stages, pipeline or kafka) runs only that part
#
# Measures, on one database of N records:
#   read       audit-read --db > /dev/null                      vs  sqlite3 CLI dumping the same rows
#   verify     audit-verify (fast path: canonical bytes)        vs  openssl sha256 over the same bytes
#   slow path  audit-verify on re-serialised records             (canonicalise, then hash)
#   pipeline   read | verify | batch | ship --kind splunk (gzip, 4 in flight) into a discarding
#              loopback HEC receiver, acks to audit-ack          vs  the shell a user might write:
#              sqlite3 json | gzip -1 | curl (no verify, no cursor, one request)
#   BENCH_ALL=1 adds: the pipeline with ship --gzip=false vs the shell without gzip, and
#              read | verify | ship | ack (audit-ship batches itself) vs the gzip shell
#   kafka      (PART kafka, or BENCH_KAFKA=1 after the pipeline rows) read | verify | ship
#              --kind kafka (lz4, idempotent, acks=all) | ack into an in-memory 3-broker
#              cluster (internal/tools/kfake, 6 partitions)  vs  the same pipeline shipping
#              to the discarding HEC receiver (gzip), in the same run; BENCH_KAFKA_FLAGS adds
#              audit-ship flags to the kafka row (e.g. "--compression zstd")
# and the peak RSS of every stage (GNU time).
#
# The machine is shared and noisy (and hosts of one kind differ by up to 2x), so
# absolute records/s mean little alone. Every row prints its wall time, records/s,
# CPU microseconds per record (user+sys of every process of the row: steadier
# than wall time while other work shares the cores) and peak RSS; every row
# with a baseline is followed by a ratio line: speed (baseline wall / ours) and
# CPU (baseline CPU / ours), both > 1 when auditpipe is the faster. Pipeline rows
# also give the CPU per record of each stage (GNU time around each process,
# user+sys / N), for the pipeline and for the shell baseline alike. The header
# names the CPU model and core count, so figures from two hosts can be told apart.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${1:-1000000}
PART=${2:-all}
case $PART in all|stages|pipeline|kafka) ;; *) echo "bench: PART must be stages, pipeline or kafka, not $PART" >&2; exit 2;; esac
[ -x /usr/bin/time ] || { echo "bench: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ "$PART" = all ] || [ "$PART" = pipeline ]; then
  for c in sqlite3 gzip curl; do
    command -v "$c" >/dev/null || { echo "bench: the pipeline rows need $c for the shell baseline (scripts/test.sh installs the sqlite3 CLI; or PART=stages)" >&2; exit 2; }
  done
fi
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a " }'; }
usrec() { awk -v n="$N" -v c="$1" 'BEGIN { printf "%.2f", c * 1e6 / n }'; } # CPU seconds -> us per record
row() { # name, wall seconds, RSS KiB (0: none): wall rate, CPU us per record (of $cpus), peak RSS
  local r="-"; [ "${3:-0}" = 0 ] || r="$(( $3 / 1024 ))"
  printf '%-50s %7s s %8s rec/s %7s us-cpu/rec %5s MiB\n' "$1" "$2" "$(rate "$2")" "$(usrec "${cpus:-0}")" "$r"
}
vs() { # vs LABEL BASE-SECS BASE-CPU OUR-SECS OUR-CPU: the speed and CPU ratios of one row to its baseline
  echo "  ratio to $1: speed $(ratio "$2" "$4")x, CPU $(ratio "$3" "$5")x"
}

model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
echo "== host: ${model:-unknown CPU model}; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $N records, $mb MB of record lines; scripts/bench.sh $N $PART${BENCH_ALL:+ (BENCH_ALL=$BENCH_ALL)}"
printf '%-50s %9s %14s %18s %9s\n' "row" "wall" "speed" "CPU per record" "peak RSS"
if [ "$PART" = all ] || [ "$PART" = stages ]; then
t "$bin/audit-read --db $db --quiet";                        r_secs=$secs r_cpu=$cpus; row "audit-read --db" "$secs" "$rss"
if command -v sqlite3 >/dev/null; then
  t "sqlite3 $db 'select seq, ts, tenant_id, kind, record_json, prev_hash, record_hash from audit_records order by seq'"
  row "  baseline: sqlite3 CLI select of the rows" "$secs" "$rss"
  vs "sqlite3 CLI" "$secs" "$cpus" "$r_secs" "$r_cpu"
fi
t "$bin/audit-verify --quiet < $lines";                       v_secs=$secs v_cpu=$cpus; row "audit-verify (fast path)" "$secs" "$rss"
t "openssl dgst -sha256 $lines";                              row "  baseline: openssl sha256 of the same bytes" "$secs" "$rss"
vs "openssl sha256" "$secs" "$cpus" "$v_secs" "$v_cpu"
t "sha256sum $lines";                                         row "  baseline: sha256sum of the same bytes" "$secs" "$rss"
vs "sha256sum" "$secs" "$cpus" "$v_secs" "$v_cpu"
echo "  (openssl uses SHA-NI where the CPU has it; coreutils sha256sum may not. audit-verify checks every line's fields and hashes every record)"
t "$bin/audit-verify --quiet < $slow";                        row "audit-verify (slow path: re-serialised)" "$secs" "$rss"
vs "the fast path (above)" "$v_secs" "$v_cpu" "$secs" "$cpus"
t "$bin/audit-read --db $db --quiet | $bin/audit-verify --quiet"; row "audit-read | audit-verify" "$secs" "$rss"
vs "audit-read alone (above)" "$r_secs" "$r_cpu" "$secs" "$cpus"
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
tck=$(getconf CLK_TCK)
hec_cpu() { # CPU seconds the receiver has used so far (/proc/PID/stat utime+stime)
  awk -v t="$tck" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/${recv:-$hec}/stat"
}
timed() { # timed ROW STAGE: the GNU time prefix that writes STAGE's peak RSS and CPU seconds to its own file
  printf '/usr/bin/time -o %s/stage-%s-%s -f "%%M %%U %%S" ' "$dir" "$1" "$2"
}
run_staged() { # run_staged ROWID LABEL "STAGES..." CMD: run CMD (built with timed ROWID STAGE), print the row, the
  # peak RSS and the CPU us per record of each stage; sets $p_secs and $p_cpu (sum of the stages)
  local id=$1 label=$2 stages=$3 cmd=$4 s kb u sy c cpu=0 maxkb=0 rssl="" cpul="" h0 h1
  rm -f "$dir"/stage-"$id"-*
  h0=$(hec_cpu)
  t "$cmd"; p_secs=$secs
  h1=$(hec_cpu)
  for s in $stages; do
    read -r kb u sy < "$dir/stage-$id-$s"
    c=$(awk -v u="$u" -v s="$sy" 'BEGIN { print u + s }')
    cpu=$(awk -v a="$cpu" -v c="$c" 'BEGIN { print a + c }')
    [ "$kb" -le "$maxkb" ] || maxkb=$kb
    rssl="$rssl $s=$(( kb / 1024 ))"
    cpul="$cpul $s=$(usrec "$c")"
  done
  p_cpu=$cpu; cpus=$cpu
  row "$label" "$secs" "$maxkb"
  echo "  CPU us per record by stage:$cpul; total $(usrec "$cpu") (the ${recv_name:-HEC receiver}, not counted: $(usrec "$(awk -v a="$h0" -v b="$h1" 'BEGIN { print b - a }')"))"
  echo "  peak RSS by stage (MiB):$rssl"
}
pipeline() { # pipeline ROWID LABEL EXPORTER BATCH(yes|no) SHIP-FLAGS...: one run of the whole loop, each exporter its own cursor
  local id=$1 label=$2 exp=$3 batch=$4; shift 4
  local stages="read verify batch ship ack"
  # Each run is a new exporter on a database that has the others' cursors: --new-cursor.
  local cmd="$(timed "$id" read)$bin/audit-read --db $dir/acks.db --from-cursor $exp --new-cursor --quiet \
   | $(timed "$id" verify)$bin/audit-verify --db $dir/acks.db --from-cursor $exp --new-cursor --quiet"
  if [ "$batch" = yes ]; then cmd="$cmd | $(timed "$id" batch)$bin/audit-batch --siem splunk --quiet"; else stages="read verify ship ack"; fi
  local sink="--kind splunk --url $url --token env:BENCH_HEC_TOKEN"
  [ "$batch" != kafka ] || sink="--kind kafka --brokers $brokers --topic audit"
  cmd="$cmd | $(timed "$id" ship)$bin/audit-ship $sink --exporter $exp --acks - --quiet $* \
   | $(timed "$id" ack)$bin/audit-ack --db $dir/acks.db --exporter $exp --new-cursor --quiet"
  run_staged "$id" "$label" "$stages" "$cmd"
  local cur; cur=$(sqlite3 "$dir/acks.db" "select last_seq from audit_export_cursor where exporter_name='$exp'" 2>/dev/null || echo '?')
  echo "  cursor after the run: $cur (of $N); CPU-bound ceiling on $(nproc) cores: $(awk -v n="$N" -v c="$p_cpu" -v k="$(nproc)" 'BEGIN { printf "%.0f", (c > 0 ? k * n / c : 0) }') records/s"
}
shell() { # shell ROWID LABEL GZIP(yes|no): the shell a user might write, each process timed like the pipeline's stages
  local id=$1 label=$2 gz=$3 stages="sqlite3 curl" cmd
  cmd="$(timed "$id" sqlite3)sqlite3 $db \"select json_object('time', ts/1000.0, 'event', json(record_json), 'fields', json_object('seq', seq, 'recordHash', record_hash)) from audit_records where seq > 0 order by seq\""
  if [ "$gz" = yes ]; then
    stages="sqlite3 gzip curl"
    cmd="$cmd | $(timed "$id" gzip)gzip -1 | $(timed "$id" curl)curl -s -o /dev/null --data-binary @- -H 'Authorization: Splunk bench' -H 'Content-Encoding: gzip' $url/services/collector/event"
  else
    cmd="$cmd | $(timed "$id" curl)curl -s -o /dev/null --data-binary @- -H 'Authorization: Splunk bench' $url/services/collector/event"
  fi
  run_staged "$id" "$label" "$stages" "$cmd"
}

kafka_rows() { # the Kafka producer beside the HEC pipeline of the same shape (audit-ship batches itself)
  rm -f "$dir/kfake.addr"
  "$bin/kfake" --topic audit:6 --addr-file "$dir/kfake.addr" >/dev/null 2>"$dir/kfake.log" & kfk=$!
  trap 'kill $hec $kfk 2>/dev/null || true' EXIT
  for _ in $(seq 50); do [ -s "$dir/kfake.addr" ] && break; sleep 0.1; done
  brokers=$(cat "$dir/kfake.addr")
  pipeline k0 "pipeline read|verify|ship|ack (HEC, gzip)" splunk:bench-k0 no
  local h_secs=$p_secs h_cpu=$p_cpu
  recv=$kfk recv_name="3-broker kfake cluster"
  pipeline k1 "pipeline read|verify|ship --kind kafka|ack (${BENCH_KAFKA_FLAGS:-lz4})" kafka:bench-k1 kafka ${BENCH_KAFKA_FLAGS:-}
  recv="" recv_name=""
  vs "the HEC pipeline (above)" "$h_secs" "$h_cpu" "$p_secs" "$p_cpu"
  echo "  (kfake keeps every record in this host's memory and shares its cores: a real cluster takes that work off the host)"
  kill $kfk 2>/dev/null || true
}
if [ "$PART" = kafka ]; then kafka_rows; exit 0; fi

# 1. The design card's pipeline as shipped: gzip on, against the shell with gzip.
pipeline p1 "pipeline read|verify|batch|ship|ack (HEC, gzip)" splunk:bench yes
g_secs=$p_secs g_cpu=$p_cpu
shell s1 "  baseline: sqlite3 | gzip -1 | curl" yes
s_secs=$p_secs s_cpu=$p_cpu
vs "the gzip shell baseline" "$s_secs" "$s_cpu" "$g_secs" "$g_cpu"
[ "${BENCH_KAFKA:-}" != 1 ] || kafka_rows
[ "${BENCH_ALL:-}" = 1 ] || exit 0

# 2. Without compression (a HEC on the same host, where gzip only costs CPU), against the shell without gzip.
pipeline p2 "pipeline, ship --gzip=false" splunk:bench-plain yes --gzip=false
u_secs=$p_secs u_cpu=$p_cpu
shell s2 "  baseline: sqlite3 | curl (no gzip)" no
vs "the shell baseline, both without gzip" "$p_secs" "$p_cpu" "$u_secs" "$u_cpu"
vs "the gzip pipeline (row 1)" "$g_secs" "$g_cpu" "$u_secs" "$u_cpu"

# 3. Without the audit-batch process (audit-ship batches plain record lines itself), gzip on.
pipeline p3 "pipeline read|verify|ship|ack (ship batches; gzip)" splunk:bench-3 no
vs "the gzip shell baseline" "$s_secs" "$s_cpu" "$p_secs" "$p_cpu"
vs "the gzip pipeline with audit-batch (row 1)" "$g_secs" "$g_cpu" "$p_secs" "$p_cpu"
