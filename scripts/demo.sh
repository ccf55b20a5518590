#!/usr/bin/env bash
# The main job end to end on a built-in sample, no SIEM account needed:
#   1. generate a sample Declaragent audit database (a real hash chain),
#   2. ship it  audit-read | audit-verify | audit-batch | audit-ship  to a local
#      VictoriaLogs over the Splunk HEC protocol, acks through a FIFO to
#      audit-ack, which commits the cursor,
#   3. read every record back from the store and re-verify the chain.
# Without network access to install VictoriaLogs it ships to the file sink.
# With --witness, the pipeline also seals signed checkpoints (audit-checkpoint
# seal) cosigned by a real witness, litewitness (installed into .tools/bin
# by scripts/install-litewitness.sh; its key in a dedicated ssh-agent), then
# verifies the log with the witness quorum and shows the witness refusing a
# second view signed with the same log key.
# Usage: scripts/demo.sh [--witness] [N]      (N records, default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PWD/bin:$PATH"
witness=
if [ "${1:-}" = --witness ]; then witness=1; shift; fi
N=${1:-${N:-20000}}
work=$PWD/.demo
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

step "build the binaries into bin/"
go build -o bin/ ./cmd/...

step "generate $N sample events and append them as a hash chain ($work/audit.db)"
audit-sample --count "$N" | audit-append --db "$work/audit.db"

kind=splunk
step "install VictoriaLogs into .tools/bin (first run only, about a minute)"
if ! scripts/install-victorialogs.sh; then
  echo "demo: VictoriaLogs could not be installed (no Go module proxy?); shipping to the file sink instead" >&2
  kind=file
fi

if [ "$kind" = splunk ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 19428)
  step "start VictoriaLogs on 127.0.0.1:$port"
  vlargs=()
  [ -n "$witness" ] && vlargs=(-delete.enable)   # the store admin's delete API, for the attack on the SIEM's copy
  .tools/bin/victoria-logs -httpListenAddr="127.0.0.1:$port" -storageDataPath="$work/vlogs" "${vlargs[@]}" \
    -loggerLevel=WARN -retentionPeriod=100y -futureRetention=100y >"$work/vlogs.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/health" >/dev/null || { cat "$work/vlogs.log" >&2; exit 1; }
  export DEMO_HEC_TOKEN=demo-token   # VictoriaLogs checks no token; audit-ship still refuses a literal one
  exporter=splunk:demo
  sinkargs=(--kind splunk --url "http://127.0.0.1:$port" --token env:DEMO_HEC_TOKEN --index declaragent_demo)
else
  exporter=file:demo
  sinkargs=(--kind file --path "$work/archive.ndjson.gz" --gzip)
fi

seal=(cat)
if [ -n "$witness" ]; then
  step "install litewitness into .tools/bin (first run only)"
  scripts/install-litewitness.sh
  tools=${AUDITPIPE_TOOLS_BIN:-$PWD/.tools/bin}
  lw=$(mktemp -d /tmp/lwdemo.XXXXXX)   # a short path: the agent's socket
  step "start litewitness with its key in a dedicated ssh-agent"
  ssh-keygen -q -t ed25519 -N '' -f "$lw/key"
  ssh-agent -D -a "$lw/sock" >/dev/null 2>&1 &
  pids+=($!)
  trap 'cleanup; rm -rf "$lw"' EXIT
  for _ in $(seq 50); do [ -S "$lw/sock" ] && break; sleep 0.1; done
  SSH_AUTH_SOCK="$lw/sock" ssh-add -q "$lw/key"
  audit-checkpoint keygen --name demo.auditpipe.example/log --signer "$work/ckpt.key" --verifier "$work/ckpt.pub" >/dev/null
  "$tools/witnessctl" add-log -db "$lw/w.db" -origin demo.auditpipe.example/log
  "$tools/witnessctl" add-key -db "$lw/w.db" -origin demo.auditpipe.example/log -key "$(cat "$work/ckpt.pub")"
  wport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 17380)
  "$tools/litewitness" -db "$lw/w.db" -name witness.demo.example/w1 -ssh-agent "$lw/sock" \
    -key "$(ssh-keygen -l -E sha256 -f "$lw/key.pub" | awk '{print $2}')" -listen "127.0.0.1:$wport" >"$work/litewitness.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q 'vkey=' "$work/litewitness.log" 2>/dev/null && curl -fs "http://127.0.0.1:$wport/" >/dev/null 2>&1 && break; sleep 0.1; done
  wvkey=$(sed -n 's/.*vkey=\([^ ]*\).*/\1/p' "$work/litewitness.log" | head -1)
  [ -n "$wvkey" ] || { cat "$work/litewitness.log" >&2; exit 1; }
  echo "$wvkey=http://127.0.0.1:$wport" >"$work/witnesses.txt"
  echo "demo: witness $wvkey on 127.0.0.1:$wport" >&2
  seal=(audit-checkpoint seal --signer "$work/ckpt.key" --out "$work/checkpoints.ndjson" --state "$work/seal.state"
        --every 5000 --witness-file "$work/witnesses.txt")
  # The checkpoints travel to the SIEM with the records (events of
  # sourcetype declaragent:audit:checkpoint), acked like them.
  [ "$kind" = splunk ] && seal+=(--emit-checkpoints)
fi

step "start audit-ack on $work/acks.fifo (commits the cursor of $exporter)"
mkfifo -m 600 "$work/acks.fifo"
audit-ack --fifo "$work/acks.fifo" --db "$work/audit.db" --exporter "$exporter" &
ackpid=$!
pids+=($ackpid)

step "ship: audit-read | audit-verify | audit-batch | audit-ship ($kind)"
audit-read --db "$work/audit.db" --from-cursor "$exporter" \
  | audit-verify --db "$work/audit.db" --from-cursor "$exporter" \
  | "${seal[@]}" \
  | audit-batch --siem "$kind" \
  | audit-ship "${sinkargs[@]}" --exporter "$exporter" --acks "$work/acks.fifo" \
      --quarantine "$work/quarantine.ndjson"

kill -TERM "$ackpid"; wait "$ackpid" || true
if command -v sqlite3 >/dev/null; then
  step "the committed cursor"
  sqlite3 -header -column "$work/audit.db" \
    "SELECT c.exporter_name, c.last_seq, h.last_hash FROM audit_export_cursor c LEFT JOIN auditpipe_cursor_hash h USING (exporter_name)"
fi

step "read the records back from the store and re-verify the chain"
if [ "$kind" = splunk ]; then
  want=$N   # the records, and with --witness the checkpoint events (each line of --out, shipped once)
  [ -n "$witness" ] && want=$((N + $(wc -l <"$work/checkpoints.ndjson")))
  for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/internal/force_flush" >/dev/null 2>&1 || true
    n=$(curl -fs "http://127.0.0.1:$port/select/logsql/query" --data-urlencode 'query=* | stats count() n' | sed 's/[^0-9]//g')
    [ "${n:-0}" -ge "$want" ] && break; sleep 0.2
  done
  echo "VictoriaLogs holds ${n:-0} events; the first one as stored:" >&2
  curl -fs "http://127.0.0.1:$port/select/logsql/query" --data-urlencode 'query=fields.seq:=1 | fields _time, fields.seq, fields.tenantId, fields.kind, index, _msg' >&2
  audit-fetch --kind splunk --url "http://127.0.0.1:$port" | audit-verify >/dev/null
else
  audit-read "$work/archive.ndjson.gz" | audit-verify >/dev/null
fi
if [ -n "$witness" ]; then
  step "verify the log against the checkpoints with the witness quorum"
  audit-read --db "$work/audit.db" | audit-checkpoint verify --verifier "$work/ckpt.pub" \
    --checkpoints "$work/checkpoints.ndjson" --state "$work/trusted.state" --init --witness-key "$work/witnesses.txt"
  echo "the newest checkpoint, cosigned by the witness:" >&2
  tail -n 1 "$work/checkpoints.ndjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checkpoint"], end="")' >&2 || tail -n 1 "$work/checkpoints.ndjson" >&2
  step "attack: the stolen log key signs another log; the witness refuses it"
  audit-sample --count "$N" --awkward | audit-append --db "$work/forged.db"
  set +e
  audit-read --db "$work/forged.db" | audit-checkpoint seal --signer "$work/ckpt.key" --out "$work/forged.ndjson" \
    --every 5000 --witness-file "$work/witnesses.txt" >/dev/null
  rc=$?
  audit-read --db "$work/forged.db" | audit-checkpoint verify --verifier "$work/ckpt.pub" \
    --checkpoints "$work/forged.ndjson" --state "$work/forged.state" --init --witness-key "$work/witnesses.txt"
  vrc=$?
  set -e
  [ "$rc" = 3 ] && [ "$vrc" = 3 ] || { echo "demo: the forged view was not refused (seal exit $rc, verify exit $vrc)" >&2; exit 1; }
  echo "demo: the witness refused the forged view (seal exit 3) and the quorum verifier refused it (exit 3)" >&2
  if [ "$kind" = splunk ]; then
    step "check the SIEM's copy: records and cosigned checkpoints fetched back from VictoriaLogs"
    audit-fetch --kind splunk --url "http://127.0.0.1:$port" --checkpoints "$work/siem-checkpoints.ndjson" \
      | audit-checkpoint check-store --verifier "$work/ckpt.pub" --witness-key "$work/witnesses.txt" \
          --checkpoints "$work/siem-checkpoints.ndjson" --reference "$work/checkpoints.ndjson" --every 5000
    cpsize=$(head -n 1 "$work/checkpoints.ndjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checkpoint"].split("\n")[1])')
    step "attack: the SIEM's admin deletes records seq 100..102 and the checkpoint of size $cpsize"
    vldel() {
      curl -fs "http://127.0.0.1:$port/delete/run_task" --data-urlencode "filter=$1" >/dev/null
      for _ in $(seq 100); do [ "$(curl -fs "http://127.0.0.1:$port/delete/active_tasks")" = "[]" ] && break; sleep 0.1; done
    }
    vldel 'fields.seq:in("100","101","102")'
    vldel "fields.type:=\"checkpoint\" fields.checkpointSize:=\"$cpsize\""
    set +e
    audit-fetch --kind splunk --url "http://127.0.0.1:$port" --checkpoints "$work/siem-checkpoints.ndjson" \
      | audit-checkpoint check-store --verifier "$work/ckpt.pub" --witness-key "$work/witnesses.txt" \
          --checkpoints "$work/siem-checkpoints.ndjson" --reference "$work/checkpoints.ndjson" --every 5000
    crc=$?
    set -e
    [ "$crc" = 3 ] || { echo "demo: check-store did not catch the deletions (exit $crc)" >&2; exit 1; }
    echo "demo: check-store named what the SIEM lost (exit 3)" >&2
  fi
fi
step "done: $N records shipped, acked, and re-verified from the store"
