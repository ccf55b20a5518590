#!/usr/bin/env bash
# A fleet through Kafka end to end (docs/fleet.md), no cluster or SIEM account
# needed:
#   1. a 3-broker Kafka cluster in memory (internal/tools/kfake, franz-go's
#      kfake: it speaks the Kafka protocol), the topic in 6 partitions;
#   2. three host databases, written concurrently (audit-sample | audit-append
#      in a loop), each shipped by its own producer pipeline
#        audit-read --follow | audit-verify --chain-mark | audit-ship --kind kafka | audit-ack
#      keyed by its chain id;
#   3. the central side, one consumer group per SIEM, both into a local
#      VictoriaLogs: group splunk-demo over its Splunk HEC intake, group
#      elastic-demo over its Elasticsearch bulk intake
#        audit-consume | audit-verify --holds F | audit-batch | audit-ship (acks on F)
#   4. every chain read back from the store, per SIEM, and re-verified on its
#      own (audit-fetch | audit-verify), and a closing line with the figures.
# Usage: scripts/demo-fleet.sh [N]     (N records per host, default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PWD/bin:$PATH"
N=${1:-${N:-10000}}
HOSTS=3
CHUNK=$(( N < 1000 ? N : 1000 ))
work=$PWD/.demo-fleet
topic=declaragent-audit
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 19438; }

step "build the binaries into bin/ (and the kfake cluster into $work)"
go build -o bin/ ./cmd/...
go build -o "$work/kfake" ./internal/tools/kfake

step "install VictoriaLogs into .tools/bin (first run only, about a minute)"
scripts/install-victorialogs.sh || { echo "demo-fleet: VictoriaLogs could not be installed (no Go module proxy?)" >&2; exit 1; }

step "start a 3-broker Kafka cluster (kfake), topic $topic in 6 partitions"
"$work/kfake" --topic "$topic:6" --addr-file "$work/brokers" >/dev/null 2>"$work/kfake.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/brokers" ] && break; sleep 0.1; done
brokers=$(cat "$work/brokers")
echo "brokers: $brokers" >&2

port=$(freeport)
step "start VictoriaLogs on 127.0.0.1:$port (the SIEMs: its HEC and Elasticsearch bulk intakes)"
"${AUDITPIPE_TOOLS_BIN:-$PWD/.tools/bin}/victoria-logs" -httpListenAddr="127.0.0.1:$port" -storageDataPath="$work/vlogs" \
  -loggerLevel=WARN -retentionPeriod=100y -futureRetention=100y >"$work/vlogs.log" 2>&1 &
pids+=($!)
vl=http://127.0.0.1:$port
for _ in $(seq 100); do curl -fs "$vl/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$vl/health" >/dev/null || { cat "$work/vlogs.log" >&2; exit 1; }
export DEMO_HEC_TOKEN=demo-token   # VictoriaLogs checks no token; audit-ship refuses a literal one

step "three hosts: $N records each, written concurrently in chunks of $CHUNK"
# The hosts' sample seeds: their chain ids hash to three different partitions
# of the six (as a fleet's chains spread; seeds 1000, 2000, 3000 would share one).
seeds=(0 4000 5000 8000)
for h in $(seq $HOSTS); do
  audit-sample --count "$CHUNK" --seed "${seeds[$h]}" | audit-append --db "$work/host$h.db" --quiet
done
writers=()
for h in $(seq $HOSTS); do
  (
    for ((i = 1; i * CHUNK < N; i++)); do
      n=$(( N - i * CHUNK < CHUNK ? N - i * CHUNK : CHUNK ))
      audit-sample --count "$n" --seed "$(( seeds[h] + i ))" | audit-append --db "$work/host$h.db" --quiet
      sleep 0.2
    done
  ) &
  writers+=($!)
done

step "a producer per host: audit-read --follow | audit-verify --chain-mark | audit-ship --kind kafka | audit-ack"
producers=()
for h in $(seq $HOSTS); do
  db=$work/host$h.db
  ( trap : TERM
    audit-read --db "$db" --from-cursor kafka:fleet --new-cursor --follow --quiet \
    | audit-verify --db "$db" --from-cursor kafka:fleet --new-cursor --chain-mark --quiet \
    | audit-ship --kind kafka --brokers "$brokers" --topic "$topic" --exporter kafka:fleet --acks - --quiet \
    | audit-ack --db "$db" --exporter kafka:fleet --new-cursor --quiet ) 2>"$work/producer$h.log" &
  producers+=($!)
  pids+=($!)
done

step "the central side: one consumer group per SIEM (splunk-demo over HEC, elastic-demo over the bulk API)"
groups=(splunk-demo elastic-demo)
declare -A kinds=([splunk-demo]=splunk [elastic-demo]=elastic)
declare -A ship=(
  [splunk-demo]="--kind splunk --url $vl --token env:DEMO_HEC_TOKEN --index fleet_demo"
  [elastic-demo]="--kind elastic --url $vl/insert/elasticsearch --index fleet-demo"
)
centrals=()
for g in "${groups[@]}"; do
  fifo=$work/$g.acks.fifo
  mkfifo -m 600 "$fifo"
  ( trap : TERM
    ( echo "$BASHPID" >"$work/$g.consume.pid"; exec audit-consume --brokers "$brokers" --topic "$topic" --group "$g" --acks "$fifo" ) \
    | audit-verify --holds "$fifo" \
    | audit-batch --siem "${kinds[$g]}" --quiet \
    | audit-ship ${ship[$g]} --exporter "${kinds[$g]}:$g" --acks "$fifo" --quiet
    echo "rc ${PIPESTATUS[*]}" >&2 ) 2>"$work/$g.log" &
  centrals+=($!)
  pids+=($!)
done

step "wait: every record written, produced (each host's cursor at its head) and in both SIEMs"
for w in "${writers[@]}"; do wait "$w"; done
for h in $(seq $HOSTS); do
  until [ "$(audit-cursor show --db "$work/host$h.db" --json kafka:fleet 2>/dev/null | sed -n 's/.*"lastSeq":\([0-9]*\).*/\1/p')" = "$N" ]; do
    sleep 0.2
    kill -0 "${producers[$((h - 1))]}" 2>/dev/null || { cat "$work/producer$h.log" >&2; exit 1; }
  done
done
chains=()
for h in $(seq $HOSTS); do # the chain id: the recordHash of seq 1 (docs/contract.md section 5)
  chains+=("$(audit-read --db "$work/host$h.db" --to-seq 1 --marks never --quiet | sed -n 's/.*"prevHash":"","recordHash":"\([0-9a-f]\{64\}\)".*/\1/p')")
done
# count_uniq of seq per group and chain, from the store
declare -A chainfield=([splunk-demo]=fields.chain [elastic-demo]=chain)
declare -A seqfield=([splunk-demo]=fields.seq [elastic-demo]=seq)
declare -A select=([splunk-demo]='index:=fleet_demo' [elastic-demo]='seq:* AND -fields.seq:*')
stat() { # group chain -> "events distinct"
  curl -fs "$vl/select/logsql/query" --data-urlencode \
    "query=${select[$1]} AND ${chainfield[$1]}:=\"$2\" | stats count() n, count_uniq(${seqfield[$1]}) u" \
    | sed -n 's/.*"n":"\([0-9]*\)".*"u":"\([0-9]*\)".*/\1 \2/p' | grep . || echo 0 0
}
for g in "${groups[@]}"; do
  for c in "${chains[@]}"; do
    for _ in $(seq 600); do
      curl -fs "$vl/internal/force_flush" >/dev/null 2>&1 || true
      read -r _ u < <(stat "$g" "$c")
      [ "${u:-0}" -ge "$N" ] && break
      sleep 0.2
    done
    [ "${u:-0}" -ge "$N" ] || { echo "demo-fleet: group $g holds ${u:-0} of chain ${c:0:12}'s $N records" >&2; tail -n 20 "$work/$g.log" >&2; exit 1; }
  done
done

step "stop: the producers (SIGTERM), then each consumer (SIGTERM: drain, commit, leave the group)"
for p in "${producers[@]}"; do kill -TERM -- "$p" 2>/dev/null || true; pkill -TERM -P "$p" 2>/dev/null || true; done
for p in "${producers[@]}"; do wait "$p" || true; done
for g in "${groups[@]}"; do kill -TERM "$(cat "$work/$g.consume.pid")"; done
for p in "${centrals[@]}"; do wait "$p" || true; done
held=0
for g in "${groups[@]}"; do
  grep -q '^rc 0 0 0 0$' "$work/$g.log" || { echo "demo-fleet: group $g's pipeline: $(grep '^rc ' "$work/$g.log")" >&2; cat "$work/$g.log" >&2; exit 1; }
  held=$(( held + $(grep -c 'chain_held' "$work/$g.log" || true) ))
  grep -h 'audit-consume:\|audit-verify:' "$work/$g.log" | sed "s/^/  $g: /" >&2 || true
done

step "read every chain back from each store and re-verify it on its own (audit-fetch --chain | audit-verify)"
total=0 events=0
for g in "${groups[@]}"; do
  for c in "${chains[@]}"; do
    read -r n u < <(stat "$g" "$c")
    audit-fetch --kind "${kinds[$g]}" --url "$vl" --chain "$c" 2>/dev/null \
      | audit-verify --quiet >/dev/null \
      || { echo "demo-fleet: group $g chain $c does not verify from the store" >&2; exit 1; }
    echo "  $g: chain ${c:0:12}… $u records ($n events) re-verified from the store" >&2
    total=$(( total + u )); events=$(( events + n ))
  done
done
lost=$(( HOSTS * N * ${#groups[@]} - total ))
echo "fleet demo: $((HOSTS * N)) records from $HOSTS hosts ($HOSTS chains) through Kafka (3 brokers, 6 partitions) into ${#groups[@]} SIEMs (${groups[*]}): lost $lost, duplicates $((events - total)), chains held $held, per-chain order kept (each chain verified in order centrally and re-verified from each store)"
[ "$lost" = 0 ] && [ "$held" = 0 ]
