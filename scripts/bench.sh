#!/usr/bin/env bash
# Throughput and latency of auditpipe on this machine, each figure beside a
# baseline measured in the same run (the machine is shared and noisy:
# compare ratios).
#
#   scripts/bench.sh [N [PART]]   N records (default 1000000), ~750-byte record lines;
#                                 PART: all (default), stages, pipeline (every sink), latency,
#                                 fleet (not in all: the central verifier over many chains)
#
#   BENCH_SINKS="splunk elastic"  the sinks the pipeline rows measure (default: splunk elastic datadog file)
#   BENCH_VLOGS=0                 no rows into VictoriaLogs (default: on when .tools/bin/victoria-logs
#                                 or $AUDITPIPE_VICTORIALOGS is there)
#   BENCH_KAFKA=1                 adds the kafka rows (audit-ship --kind kafka into a 3-broker kfake, beside HEC)
#   BENCH_ALL=1                   adds the splunk variants: ship --gzip=false, and no audit-batch
#   BENCH_LIMIT_ROUNDS=N          the limit's rounds (default 3), each beside a run of the default pipeline; medians
#   BENCH_LATENCY="100 10000"     the steady append rates of PART latency, records/s
#   BENCH_LATENCY_SECS=10         how long each latency rate runs
#   BENCH_DIR=.bench              where the databases, binaries and outputs go
#
# stages, on one database of N records:
#   read       audit-read --db > /dev/null                      vs  sqlite3 CLI dumping the same rows
#   verify     audit-verify (fast path: canonical bytes)        vs  openssl sha256 / sha256sum over the same bytes
#   slow path  audit-verify on re-serialised records            (canonicalise, then hash)
# pipeline, for every sink of BENCH_SINKS:
#   read | verify | batch --siem KIND | ship --kind KIND | ack, into a receiver that costs next to
#   nothing (internal/tools/siemnull: it answers each intake's success answer and discards; it
#   decompresses only Elasticsearch bulk bodies, which it must count to answer one item per
#   document), then into VictoriaLogs (its HEC, bulk and Datadog endpoints), each beside the
#   shell a user might write for the same target, with no verification, no cursor, one request:
#     splunk   sqlite3 HEC events (the record line as the event string, the indexed fields) | gzip -1 | curl
#     elastic  sqlite3 bulk action+document lines (the record line as "message")          | gzip -1 | curl
#     datadog  sqlite3 one JSON array of logs (the record line as "message")              | gzip -1 | curl
#     into VictoriaLogs, which reads at most 64 MiB a request, the same rows go through
#     split -l 10000 --filter 'gzip -1 | curl' (one request per 10000 lines) instead
#     file     sqlite3 record lines | gzip -1 > file   (audit-ship also fsyncs every batch; the shell does not)
# splunk options and the limit (with splunk in BENCH_SINKS): the default pipeline again (the run's
#   noise), ship --hec-fields=false, ship --endpoint raw, then the per-record limit piece by piece:
#   sqlite3 scan + openssl sha256 + gzip level 1 of the HEC events (internal/tools/gzip1, audit-ship's
#   compressor) + the record lines through 3 pipes, and the default pipeline's fraction of it
# latency: internal/tools/latency appends rows at each BENCH_LATENCY rate while the follow
#   pipeline (audit-read --follow | audit-verify | audit-batch | audit-ship --kind splunk --acks FIFO,
#   audit-ack --fifo) ships them into the null receiver, and prints, per rate, the time from each
#   row's commit to the ack line covering it and to the committed cursor covering it (p50 p90 p99 max),
#   at the default knobs and with the latency knobs turned down.
# fleet (issue 15; run on its own: scripts/bench.sh N fleet): the central side's audit-verify
#   over N records of 100 chains interleaved in runs of 10 (internal/tools/chainmix: chain marks
#   as audit-consume writes a topic of many hosts) beside the same N records of one chain (plain,
#   and after one chain mark), and the memory per chain held: peak RSS of audit-verify over
#   BENCH_CHAINS (default 10000) chains of 3 records beside one chain of as many records,
#   the difference divided by the chains. The producer side's rows are BENCH_KAFKA=1.
#
# The machine is shared and noisy (and hosts of one kind differ by up to 2x), so
# absolute records/s mean little alone. Every row prints its wall time, records/s,
# CPU microseconds per record (user+sys of every process of the row: steadier
# than wall time while other work shares the cores) and peak RSS; every row
# with a baseline is followed by a ratio line: speed (baseline wall / ours) and
# CPU (baseline CPU / ours), both > 1 when auditpipe is the faster. Pipeline rows
# also give the CPU per record of each stage (GNU time around each process,
# user+sys / N), for the pipeline and for the shell baseline alike, and the
# receiver's CPU per record during the row (/proc/PID/stat), which is not in
# the row's total. The header names the CPU model, core count and load average.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${1:-1000000}
PART=${2:-all}
case $PART in all|stages|pipeline|latency|fleet) ;; sinks) PART=pipeline;; *) echo "bench: PART must be all, stages, pipeline, latency or fleet, not $PART" >&2; exit 2;; esac
SINKS=${BENCH_SINKS:-splunk elastic datadog file}
[ "${BENCH_KAFKA:-}" != 1 ] || case " $SINKS " in *" kafka "*) ;; *) SINKS="$SINKS kafka";; esac
for s in $SINKS; do
  case $s in splunk|elastic|datadog|file|kafka) ;; *) echo "bench: BENCH_SINKS: unknown sink $s (splunk, elastic, datadog, file, kafka)" >&2; exit 2;; esac
done
vlbin=${AUDITPIPE_VICTORIALOGS:-.tools/bin/victoria-logs}
VLOGS=${BENCH_VLOGS:-1}
if [ "$VLOGS" = 1 ] && [ ! -x "$vlbin" ]; then
  echo "bench: no VictoriaLogs at $vlbin (scripts/install-victorialogs.sh): no rows into VictoriaLogs" >&2; VLOGS=0
fi
[ -x /usr/bin/time ] || { echo "bench: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ "$PART" = all ] || [ "$PART" = pipeline ]; then
  for c in sqlite3 gzip curl; do
    command -v "$c" >/dev/null || { echo "bench: the pipeline rows need $c for the shell baseline (scripts/test.sh installs the sqlite3 CLI; or PART=stages)" >&2; exit 2; }
  done
fi
dir=${BENCH_DIR:-.bench}; mkdir -p "$dir"
bin=$dir/bin
go build -o "$bin/" ./cmd/... ./internal/tools/...
db=$dir/audit-$N.db
if [ "$PART" != latency ] && [ "$PART" != fleet ] && [ ! -s "$db" ]; then
  echo "bench: generating $N records into $db" >&2
  rm -f "$db"*
  "$bin/audit-sample" --count "$N" | "$bin/audit-append" --db "$db" --batch 5000 --quiet
fi
lines=$dir/lines-$N.ndjson
slow=$dir/reserialised-$N.ndjson
mb=?
if [ "$PART" = all ] || [ "$PART" = stages ]; then
  [ -s "$lines" ] || "$bin/audit-read" --db "$db" --quiet > "$lines"
  [ -s "$slow" ] || "$bin/reserialize" < "$lines" > "$slow"
  mb=$(( $(stat -L -c %s "$lines") / 1000000 ))
  # Every input into the page cache first, so no figure below includes disk reads.
  cat "$db" "$lines" "$slow" > /dev/null
elif [ "$PART" = pipeline ]; then
  cat "$db" > /dev/null
  mb="~$(( N * 750 / 1000000 ))"
fi

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
  printf '%-62s %7s s %8s rec/s %7s us-cpu/rec %5s MiB\n' "$1" "$2" "$(rate "$2")" "$(usrec "${cpus:-0}")" "$r"
}
vs() { # vs LABEL BASE-SECS BASE-CPU OUR-SECS OUR-CPU: the speed and CPU ratios of one row to its baseline
  echo "  ratio to $1: speed $(ratio "$2" "$4")x, CPU $(ratio "$3" "$5")x"
}

model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
echo "== host: ${model:-unknown CPU model}; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PART" = fleet ]; then
  echo "== scripts/bench.sh $N fleet: audit-verify over many interleaved chains (internal/tools/chainmix, ~750-byte lines)"
  printf '%-62s %9s %14s %18s %9s\n' "row" "wall" "speed" "CPU per record" "peak RSS"
  one=$dir/chains1-$N.ndjson onem=$dir/chains1m-$N.ndjson many=$dir/chains100-$N.ndjson
  [ -s "$one" ] || "$bin/chainmix" --chains 1 --records "$N" --marks=false > "$one"
  [ -s "$onem" ] || "$bin/chainmix" --chains 1 --records "$N" --run "$N" > "$onem"
  [ -s "$many" ] || "$bin/chainmix" --chains 100 --records "$N" --run 10 > "$many"
  cat "$one" "$onem" "$many" > /dev/null
  t "$bin/audit-verify --quiet < $one"; row "verify: 1 chain (one database's lines)" "$secs" "$rss"
  o_secs=$secs o_cpu=$cpus o_rss=$rss
  t "$bin/audit-verify --quiet < $onem"; row "verify: 1 chain after a chain mark (the many-chain path)" "$secs" "$rss"
  m1_secs=$secs m1_cpu=$cpus
  t "$bin/audit-verify --quiet < $many"; row "verify: 100 chains interleaved in runs of 10" "$secs" "$rss"
  vs "1 chain after a chain mark (> 1: 100 chains faster)" "$m1_secs" "$m1_cpu" "$secs" "$cpus"
  vs "1 chain, one database's lines" "$o_secs" "$o_cpu" "$secs" "$cpus"
  K=${BENCH_CHAINS:-10000}
  kc=$dir/chains$K-x3.ndjson k1=$dir/chains1-$((3 * K)).ndjson
  [ -s "$kc" ] || "$bin/chainmix" --chains "$K" --records $((3 * K)) --run 3 > "$kc"
  [ -s "$k1" ] || "$bin/chainmix" --chains 1 --records $((3 * K)) --run $((3 * K)) > "$k1"
  N0=$N; N=$((3 * K))
  t "$bin/audit-verify --quiet < $k1"; row "verify: 1 chain of $N records (after a chain mark)" "$secs" "$rss"; r1=$rss
  t "$bin/audit-verify --quiet < $kc"; row "verify: $K chains of 3 records each (all held at once)" "$secs" "$rss"; rk=$rss
  N=$N0
  echo "  memory per chain held: $(awk -v a="$rk" -v b="$r1" -v k="$K" 'BEGIN { printf "%.0f", (a - b) * 1024 / k }') bytes (peak RSS $((rk / 1024)) MiB with $K chains - $((r1 / 1024)) MiB with 1, / $K; audit-verify --chain-window 64)"
  exit 0
fi
if [ "$PART" = latency ]; then
  echo "== scripts/bench.sh $N latency (BENCH_LATENCY=\"${BENCH_LATENCY:-100 10000}\" BENCH_LATENCY_SECS=${BENCH_LATENCY_SECS:-10}${BENCH_ALL:+ BENCH_ALL=$BENCH_ALL})"
else
  echo "== $N records, $mb MB of record lines; scripts/bench.sh $N $PART (BENCH_SINKS=\"$SINKS\" BENCH_VLOGS=$VLOGS${BENCH_ALL:+ BENCH_ALL=$BENCH_ALL})"
fi
[ "$PART" = latency ] || printf '%-62s %9s %14s %18s %9s\n' "row" "wall" "speed" "CPU per record" "peak RSS"
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

# Receivers: the null receiver (every HTTP intake's success answer, discarding) and VictoriaLogs.
recvs=""; vldata=""
cleanup() {
  for p in $recvs; do kill "$p" 2>/dev/null || true; done
  for p in $recvs; do wait "$p" 2>/dev/null || true; done
  [ -z "$vldata" ] || rm -rf "$vldata"
}
trap cleanup EXIT
rm -f "$dir/null.addr"
"$bin/siemnull" --port-file "$dir/null.addr" 2>"$dir/siemnull.log" & nullpid=$!; recvs="$nullpid"
for _ in $(seq 50); do [ -s "$dir/null.addr" ] && break; sleep 0.1; done
nullurl="http://$(cat "$dir/null.addr")"
export BENCH_HEC_TOKEN=bench BENCH_DD_KEY=bench
tck=$(getconf CLK_TCK)
recv=$nullpid recvname="the null receiver"
recv_cpu() { # CPU seconds the current receiver ($recv) has used so far (/proc/PID/stat utime+stime); 0 if none
  if [ -n "$recv" ]; then awk -v t="$tck" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$recv/stat"; else echo 0; fi
}
timed() { # timed ROW STAGE: the GNU time prefix that writes STAGE's peak RSS and CPU seconds to its own file
  printf '/usr/bin/time -o %s/stage-%s-%s -f "%%M %%U %%S" ' "$dir" "$1" "$2"
}
run_staged() { # run_staged ROWID LABEL "STAGES..." CMD: run CMD (built with timed ROWID STAGE), print the row, the
  # peak RSS and the CPU us per record of each stage; sets $p_secs and $p_cpu (sum of the stages)
  local id=$1 label=$2 stages=$3 cmd=$4 s kb u sy c cpu=0 maxkb=0 rssl="" cpul="" h0 h1 rnote
  rm -f "$dir"/stage-"$id"-*
  h0=$(recv_cpu)
  t "$cmd"; p_secs=$secs
  h1=$(recv_cpu)
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
  rnote=""; [ -z "$recv" ] || rnote=" ($recvname, not counted: $(usrec "$(awk -v a="$h0" -v b="$h1" 'BEGIN { print b - a }')"))"
  echo "  CPU us per record by stage:$cpul; total $(usrec "$cpu")$rnote"
  echo "  peak RSS by stage (MiB):$rssl"
}
# ship_args KIND BASE-URL ROWID: audit-ship's target flags for KIND at BASE-URL (a receiver's root)
ship_args() {
  case $1 in
    splunk)  echo "--url $2 --token env:BENCH_HEC_TOKEN" ;;
    elastic) if [ "$2" = "$nullurl" ]; then echo "--url $2 --index bench"; else echo "--url $2/insert/elasticsearch --index bench"; fi ;;
    datadog) echo "--url $2 --api-key env:BENCH_DD_KEY --hostname bench" ;;
    file)    rm -f "$dir/out-$3.ndjson.gz"; echo "--path $dir/out-$3.ndjson.gz" ;;
    kafka)   echo "--brokers $2 --topic audit" ;;
  esac
}
pipeline() { # pipeline ROWID LABEL KIND BASE-URL BATCH(yes|no) SHIP-FLAGS...: one run of the whole loop, each row its own cursor
  local id=$1 label=$2 kind=$3 base=$4 batch=$5; shift 5
  local exp="$kind:bench-$id" stages="read verify batch ship ack"
  # Each run is a new exporter on a database that has the others' cursors: --new-cursor.
  local cmd="$(timed "$id" read)$bin/audit-read --db $dir/acks.db --from-cursor $exp --new-cursor --quiet \
   | $(timed "$id" verify)$bin/audit-verify --db $dir/acks.db --from-cursor $exp --new-cursor --quiet"
  if [ "$batch" = yes ]; then cmd="$cmd | $(timed "$id" batch)$bin/audit-batch --siem $kind --quiet"; else stages="read verify ship ack"; fi
  cmd="$cmd | $(timed "$id" ship)$bin/audit-ship --kind $kind $(ship_args "$kind" "$base" "$id") --exporter $exp --acks - --give-up-after 60s --quiet $* \
   | $(timed "$id" ack)$bin/audit-ack --db $dir/acks.db --exporter $exp --new-cursor --quiet"
  run_staged "$id" "$label" "$stages" "$cmd"
  local cur; cur=$(sqlite3 "$dir/acks.db" "select last_seq from audit_export_cursor where exporter_name='$exp'" 2>/dev/null || echo '?')
  echo "  cursor after the run: $cur (of $head); CPU-bound ceiling on $(nproc) cores: $(awk -v n="$N" -v c="$p_cpu" -v k="$(nproc)" 'BEGIN { printf "%.0f", (c > 0 ? k * n / c : 0) }') records/s"
  if [ "$cur" != "$head" ]; then echo "bench: $label: the cursor is at $cur, not at the last seq $head: not every record was delivered" >&2; exit 1; fi
}
# The shell's rows, built by sqlite3's JSON functions. LINE is the record line (as audit-read
# writes it, but with the record re-serialised by json()); ''||LINE makes it a JSON string.
chunk=10000 # lines per request of the shell baselines into VictoriaLogs
LINE="json_object('seq',seq,'ts',ts,'tenantId',tenant_id,'kind',kind,'record',json(record_json),'prevHash',prev_hash,'recordHash',record_hash)"
shell_sql() { # shell_sql KIND: the select that prints KIND's request body, one row a line
  case $1 in
    splunk) echo "select json_object('time', ts/1000.0, 'event', ''||$LINE, 'fields', json_object('seq', ''||seq, 'tenantId', tenant_id, 'kind', kind, 'recordHash', record_hash)) from audit_records where seq > 0 order by seq" ;;
    elastic) echo "select json_object('create', json_object('_index', 'bench', '_id', record_hash)) || char(10) || json_object('@timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', ts/1000.0, 'unixepoch'), 'seq', seq, 'tenantId', tenant_id, 'kind', kind, 'recordHash', record_hash, 'prevHash', prev_hash, 'message', ''||$LINE) from audit_records where seq > 0 order by seq" ;;
    datadog) echo "select case when row_number() over (order by seq) = 1 then '[' else ',' end || json_object('ddsource', 'declaragent:audit', 'hostname', 'bench', 'service', 'declaragent', 'message', ''||$LINE, 'timestamp', ts, 'seq', ''||seq, 'tenantId', tenant_id, 'kind', kind, 'recordHash', record_hash, 'prevHash', prev_hash) from audit_records where seq > 0 order by seq; select ']'" ;;
    file) echo "select $LINE from audit_records where seq > 0 order by seq" ;;
  esac
}
shell() { # shell ROWID LABEL KIND BASE-URL [nogzip|split]: the shell a user might write for KIND, each process timed like the pipeline's stages
  local id=$1 label=$2 kind=$3 base=$4 gz=${5:-gzip} stages="sqlite3 gzip curl" cmd path hdr sql
  sql=$(shell_sql "$kind")
  # split: rows of the datadog array are joined per request by paste, not by sqlite3
  if [ "$gz" = split ] && [ "$kind" = datadog ]; then sql="select json_object${sql#*json_object}"; sql=${sql%"; select ']'"}; fi
  cmd="$(timed "$id" sqlite3)sqlite3 $db \"$sql\""
  case $kind in
    splunk)  path=/services/collector/event; hdr="-H 'Authorization: Splunk bench'" ;;
    elastic) path=/_bulk; [ "$base" = "$nullurl" ] || path=/insert/elasticsearch/_bulk; hdr="-H 'VL-Msg-Field: message' -H 'VL-Time-Field: @timestamp'" ;;
    datadog) path=/api/v2/logs; hdr="-H 'DD-API-KEY: bench'" ;;
  esac
  if [ "$kind" = file ]; then
    rm -f "$dir/shell-$id.ndjson.gz"
    cmd="$cmd | $(timed "$id" gzip)gzip -1 > $dir/shell-$id.ndjson.gz"; stages="sqlite3 gzip"
  elif [ "$gz" = split ]; then
    # VictoriaLogs reads at most 64 MiB a request: one request per $chunk lines, each its own gzip -1 | curl
    # (split --filter; GNU time counts the filters' CPU in split's)
    local join=""; [ "$kind" != datadog ] || join="{ printf '['; paste -sd, -; printf ']'; } | "
    cmd="$cmd | $(timed "$id" split)split -l $chunk --filter \"${join}gzip -1 | curl -sf -o /dev/null --data-binary @- $hdr -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' $base$path\""
    stages="sqlite3 split"
  elif [ "$gz" = gzip ]; then
    cmd="$cmd | $(timed "$id" gzip)gzip -1 | $(timed "$id" curl)curl -sf -o /dev/null --data-binary @- $hdr -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' $base$path"
  else
    cmd="$cmd | $(timed "$id" curl)curl -sf -o /dev/null --data-binary @- $hdr -H 'Content-Type: application/json' $base$path"; stages="sqlite3 curl"
  fi
  run_staged "$id" "$label" "$stages" "$cmd"
}
# sink_rows KIND TARGET BASE-URL: the pipeline for KIND into TARGET, beside its shell baseline
sink_rows() {
  local kind=$1 target=$2 base=$3 id="$1-$2" what
  case $kind in splunk) what="HEC, gzip";; elastic) what="bulk, gzip";; datadog) what="logs v2, gzip";; file) what="gzip file";; esac
  local into=" into $target"; [ "$kind" != file ] || into=""
  pipeline "p-$id" "$kind: read|verify|batch|ship|ack ($what)$into" "$kind" "$base" yes
  local ps=$p_secs pc=$p_cpu
  [ "$kind-$target" != splunk-null ] || { sp_secs=$ps; sp_cpu=$pc; }
  local bl="sqlite3 | gzip -1 | curl" how=gzip
  [ "$kind" != file ] || bl="sqlite3 | gzip -1 > file"
  [ "$target" != vlogs ] || bl="sqlite3 | split -l $chunk --filter 'gzip -1 | curl'" how=split
  shell "s-$id" "  baseline: $bl" "$kind" "$base" "$how"
  vs "the shell baseline ($bl)" "$p_secs" "$p_cpu" "$ps" "$pc"
}

# kafka_rows: read|verify|batch|ship --kind kafka|ack into an in-process 3-broker kfake cluster
# (internal/tools/kfake, 6 partitions), beside the HEC pipeline of the same shape into the null
# receiver, in the same run (there is no shell baseline for Kafka here: no kcat on this host).
# kfake keeps every record in this host's memory and shares its cores; its CPU is given apart.
# BENCH_KAFKA_FLAGS adds audit-ship flags (e.g. "--compression zstd").
kafka_rows() {
  rm -f "$dir/kfake.addr"
  "$bin/kfake" --topic audit:6 --addr-file "$dir/kfake.addr" >/dev/null 2>"$dir/kfake.log" & local kfk=$!
  recvs="$recvs $kfk"
  for _ in $(seq 50); do [ -s "$dir/kfake.addr" ] && break; sleep 0.1; done
  brokers=$(cat "$dir/kfake.addr")
  pipeline p-kafka-hec "kafka: (HEC beside it) read|verify|batch|ship|ack (HEC, gzip) into null" splunk "$nullurl" yes
  local h_secs=$p_secs h_cpu=$p_cpu
  local r0=$recv n0=$recvname; recv=$kfk recvname="the 3-broker kfake cluster"
  pipeline p-kafka "kafka: read|verify|batch|ship|ack (${BENCH_KAFKA_FLAGS:-lz4}) into kfake" kafka "$brokers" yes ${BENCH_KAFKA_FLAGS:-}
  recv=$r0 recvname=$n0
  vs "the HEC pipeline (above)" "$h_secs" "$h_cpu" "$p_secs" "$p_cpu"
  echo "  (kfake keeps every record in this host's memory and shares its cores: a real cluster takes that work off the host)"
}

# limit_rows PIPELINE-CPU: the per-record limit of the HEC pipeline, measured piece by piece in
# this run (issue 17): the SQLite scan (sqlite3 CLI select), SHA-256 of the record lines
# (openssl, SHA-NI), gzip level 1 of the HEC event stream (internal/tools/gzip1: the compressor
# audit-ship uses; GNU gzip -1 is printed beside it), and one pipe copy per stage that carries
# records (cat through 3 pipes: read->verify->batch->ship); their sum over the default
# pipeline's CPU per record is the fraction of the limit it reaches. BENCH_LIMIT_ROUNDS (default 3)
# rounds, each a default pipeline run and the four pieces; the medians are the figures.
limit_rows() {
  local pc=$1 r rounds=${BENCH_LIMIT_ROUNDS:-3} events=$dir/events-$N.json
  local pcs="" reads="" shas="" gzs="" pipes="" sums="" fracs="" sum
  [ -s "$lines" ] || "$bin/audit-read" --db "$db" --quiet > "$lines"
  [ -s "$events" ] || sqlite3 "$db" "$(shell_sql splunk)" > "$events"
  cat "$lines" "$events" > /dev/null
  echo "== the limit (issue 17): the irreducible pieces of the HEC pipeline, each alone, in $rounds rounds"
  echo "   alternated with the default splunk pipeline into null (CPU us per record; a piece measured once"
  echo "   moves by 2x on this kind of host: the medians are the figures)"
  t "gzip -1 < $events"; row "  (GNU gzip -1 of the HEC events, $(( $(stat -L -c %s "$events") / N )) B/event: not the limit)" "$secs" "$rss"
  printf '  %-6s %9s %13s %8s %8s %8s %8s %15s\n' round pipeline "sqlite3 scan" SHA-256 "gzip -1" "3 pipes" limit "pipeline/limit"
  for r in $(seq "$rounds"); do
    # the pipeline's own row is not printed: only its CPU per record is wanted here
    if [ "$r" = 1 ]; then pc=$1; else pipeline "p-lim$r" "limit round $r" splunk "$nullurl" yes > /dev/null; pc=$p_cpu; fi
    t "sqlite3 $db 'select seq, ts, tenant_id, kind, record_json, prev_hash, record_hash from audit_records order by seq'"; l_read=$cpus
    t "openssl dgst -sha256 $lines"; l_sha=$cpus
    t "$bin/gzip1 < $events"; l_gz=$cpus
    t "cat $lines | cat | cat | cat"; l_pipe=$cpus
    sum=$(awk -v a="$l_read" -v b="$l_sha" -v c="$l_gz" -v d="$l_pipe" 'BEGIN { print a + b + c + d }')
    printf '  %-6s %9s %13s %8s %8s %8s %8s %15s\n' "$r" "$(usrec "$pc")" "$(usrec "$l_read")" "$(usrec "$l_sha")" \
      "$(usrec "$l_gz")" "$(usrec "$l_pipe")" "$(usrec "$sum")" "$(ratio "$sum" "$pc")"
    pcs="$pcs $pc" reads="$reads $l_read" shas="$shas $l_sha" gzs="$gzs $l_gz" pipes="$pipes $l_pipe" sums="$sums $sum"
  done
  med() { echo "$*" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
  local mpc msum; mpc=$(med $pcs); msum=$(med $sums)
  printf '  %-6s %9s %13s %8s %8s %8s %8s %15s\n' median "$(usrec "$mpc")" "$(usrec "$(med $reads)")" "$(usrec "$(med $shas)")" \
    "$(usrec "$(med $gzs)")" "$(usrec "$(med $pipes)")" "$(usrec "$msum")" "$(ratio "$msum" "$mpc")"
  echo "  limit: $(usrec "$msum") us-cpu/rec; the default splunk pipeline $(usrec "$mpc") us-cpu/rec: $(ratio "$msum" "$mpc") of the limit (medians of $rounds rounds)"
}

if [ "$PART" = all ] || [ "$PART" = pipeline ]; then
  # sync: the copy is written back now, not during the first row (audit-ack's fsync would pay for it)
  rm -f "$dir/acks.db"*; cp "$db" "$dir/acks.db"; sync
  head=$(sqlite3 "$db" "select coalesce(max(seq), 0) from audit_records")
  for kind in $SINKS; do
    case $kind in
      kafka) kafka_rows;;
      file) recv="" recvname=""; sink_rows file disk ""; recv=$nullpid recvname="the null receiver";;
      *) sink_rows "$kind" null "$nullurl";;
    esac
  done
  if [ "${BENCH_ALL:-}" = 1 ] && case " $SINKS " in *" splunk "*) true;; *) false;; esac; then
    # Without compression (a HEC on the same host, where gzip only costs CPU), against the shell without gzip.
    pipeline p2 "splunk: pipeline, ship --gzip=false into null" splunk "$nullurl" yes --gzip=false
    u_secs=$p_secs u_cpu=$p_cpu
    shell s2 "  baseline: sqlite3 | curl (no gzip)" splunk "$nullurl" nogzip
    vs "the shell baseline, both without gzip" "$p_secs" "$p_cpu" "$u_secs" "$u_cpu"
    # Without the audit-batch process (audit-ship batches plain record lines itself), gzip on.
    pipeline p3 "splunk: read|verify|ship|ack (ship batches; gzip) into null" splunk "$nullurl" no
    n_secs=$p_secs n_cpu=$p_cpu
    shell s3 "  baseline: sqlite3 | gzip -1 | curl" splunk "$nullurl"
    vs "the shell baseline" "$p_secs" "$p_cpu" "$n_secs" "$n_cpu"
  fi
  if case " $SINKS " in *" splunk "*) true;; *) false;; esac; then
    # The splunk sink's options beside the default, in this run: events without the indexed
    # fields block, and the raw endpoint (the record lines as the body; siemnull answers it too).
    pipeline p-def "splunk: default (event, fields) into null, again" splunk "$nullurl" yes
    d_secs=$p_secs d_cpu=$p_cpu
    vs "the first splunk row (the same pipeline: this run's noise)" "$sp_secs" "$sp_cpu" "$d_secs" "$d_cpu"
    pipeline p-nof "splunk: ship --hec-fields=false into null" splunk "$nullurl" yes --hec-fields=false
    vs "the default (above)" "$d_secs" "$d_cpu" "$p_secs" "$p_cpu"
    pipeline p-raw "splunk: ship --endpoint raw into null" splunk "$nullurl" yes --endpoint raw
    vs "the default (above)" "$d_secs" "$d_cpu" "$p_secs" "$p_cpu"
    limit_rows "$d_cpu"
  fi
  vlsinks=""
  for kind in $SINKS; do case $kind in splunk|elastic|datadog) vlsinks="$vlsinks $kind";; esac; done
  if [ "$VLOGS" = 1 ] && [ -n "$vlsinks" ]; then
    vldata=$(mktemp -d "${TMPDIR:-/tmp}/bench-vlogs-XXXXXX")
    vlpid=""
    for _ in 1 2 3; do
      vlport=$(( 20000 + RANDOM % 30000 ))
      "$vlbin" -httpListenAddr=127.0.0.1:$vlport -storageDataPath="$vldata" -loggerLevel=WARN -retentionPeriod=100y \
        -futureRetention=100y -inmemoryDataFlushInterval=1s -insert.maxLineSizeBytes=64MiB >"$dir/vlogs.log" 2>&1 & vlpid=$!
      for _ in $(seq 100); do curl -sf "http://127.0.0.1:$vlport/health" >/dev/null 2>&1 && break; kill -0 "$vlpid" 2>/dev/null || break; sleep 0.1; done
      if curl -sf "http://127.0.0.1:$vlport/health" >/dev/null 2>&1; then break; fi
      kill "$vlpid" 2>/dev/null || true; wait "$vlpid" 2>/dev/null || true; vlpid=""
    done
    [ -n "$vlpid" ] || { echo "bench: VictoriaLogs did not start; its log:" >&2; tail -5 "$dir/vlogs.log" >&2; exit 1; }
    recvs="$recvs $vlpid"; recv=$vlpid recvname="VictoriaLogs"
    echo "== into VictoriaLogs ($vlbin): its CPU per record is its ingestion, given apart; it indexes after the answer, so it is a lower bound"
    for kind in $vlsinks; do sink_rows "$kind" vlogs "http://127.0.0.1:$vlport"; done
    recv=$nullpid recvname="the null receiver"
  fi
fi

if [ "$PART" = all ] || [ "$PART" = latency ]; then
  echo "== latency: rows appended at a steady rate while the follow pipeline ships them into the null receiver"
  echo "   (from each row's commit to the ack line covering it, and to the committed cursor covering it)"
  echo "   knobs: audit-read --poll (20ms; 100ms before issue 17), audit-batch --min-interval (50ms; the interval after a collapse),"
  echo "   audit-ack --commit-interval (50ms, group commit; 500ms before issue 17); 'knobs down' sets 5ms, 5ms, 0 (BENCH_ALL=1 also turns each down alone)"
  lat() { "$bin/latency" --bin "$bin" --dir "$dir/latency" --url "$nullurl" --duration "${BENCH_LATENCY_SECS:-10}s" "$@"; }
  for r in ${BENCH_LATENCY:-100 10000}; do
    lat --rate "$r"
    if [ "${BENCH_ALL:-}" = 1 ]; then
      lat --rate "$r" --label "audit-read --poll 5ms" --read-flags "--poll 5ms"
      lat --rate "$r" --label "audit-batch --min-interval 5ms" --batch-flags "--min-interval 5ms"
      lat --rate "$r" --label "audit-ack --commit-interval 0" --ack-flags "--commit-interval 0"
    fi
    lat --rate "$r" --label "knobs down" --read-flags "--poll 5ms" --batch-flags "--min-interval 5ms" --ack-flags "--commit-interval 0"
  done
fi
