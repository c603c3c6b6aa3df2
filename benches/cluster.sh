#!/usr/bin/env bash
# The cluster's latency and cost on one machine. Needs nats-server (JetStream) and a release
# build with the cluster: `cargo build --release --features cluster`.
#
#   benches/cluster.sh [CALLS] [LATENCY_CALLS] [ROUNDS] [STAGES]
#
# 1. Latency: LATENCY_CALLS Twilio calls of upset_caller.wav into node A at twice real time; each cue's
#    latency (its arrival minus when the frame holding its t_s was sent) read from the Monitor
#    stream of node A itself and of node B (through NATS), alternately, ROUNDS times.
# 2. Cost: CALLS real-time gRPC calls of upset_caller.wav on one node without the cluster, on one
#    node of a cluster, and spread over 2 and 3 nodes; every node's CPU from /metrics, summed.
# STAGES picks what runs: "latency,single,one,two,three" (the default) or a part of it.
# The client runs on the same cores as the nodes.
# Results: a table on stdout; logs in $TMPDIR/attune-cluster/.
set -u
cd "$(dirname "$0")/.."
CALLS=${1:-200}
LAT_CALLS=${2:-50}
ROUNDS=${3:-3}
STAGES=${4:-latency,single,one,two,three}
FILE=examples/calls/upset_caller.wav
FILE_S=95.81
A=target/release/attune
D=${TMPDIR:-/tmp}/attune-cluster
rm -rf "$D"; mkdir -p "$D"
NATS_PORT=$((24000 + RANDOM % 1000))
nats-server -js -sd "$D/js" -a 127.0.0.1 -p $NATS_PORT > "$D/nats.log" 2>&1 &
NATS_PID=$!
NATS=nats://127.0.0.1:$NATS_PORT
PIDS=()
cleanup() { kill "${PIDS[@]}" $NATS_PID 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
sleep 1

# start_node NAME INDEX [cluster]: node NAME on gRPC 5170INDEX and HTTP 1870INDEX with its own
# SQLite store (tokens in $D/NAME.ingest and $D/NAME.monitor).
start_node() {
  local name=$1 i=$2 extra=()
  [ "${3:-}" = cluster ] && extra=(--cluster "$NATS" --node-id "$name")
  $A tokens create --role ingest --db "$D/$name.db" 2>/dev/null | tail -1 > "$D/$name.ingest"
  $A tokens create --role monitor --db "$D/$name.db" 2>/dev/null | tail -1 > "$D/$name.monitor"
  $A serve --db "$D/$name.db" --grpc 127.0.0.1:5170$i --http 127.0.0.1:1870$i \
    --allow-unsigned-telephony --max-calls 5000 "${extra[@]}" > "$D/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do curl -sf http://127.0.0.1:1870$i/healthz > /dev/null && return; sleep 0.1; done
  echo "node $name did not start: $(cat "$D/$name.log")" >&2; exit 1
}
stop_nodes() { kill -INT "${PIDS[@]}" 2>/dev/null; wait "${PIDS[@]}" 2>/dev/null; PIDS=(); }
cpu_of() { curl -s -H "Authorization: Bearer $(cat "$D/$1.monitor")" http://127.0.0.1:1870$2/metrics | awk '/^process_cpu_seconds_total/ {print $2}'; }
field() { python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(eval(sys.argv[2]))" "$1" "$2"; }

has() { [[ ",$STAGES," == *",$1,"* ]]; }
if has latency; then
echo "== 1. latency: $LAT_CALLS Twilio calls into node a (speed 2), cues read on a and on b, $ROUNDS rounds"
start_node a 1 cluster
start_node b 2 cluster
# Node b reads with node a's monitor token: one shared store is the real set-up; here each node
# has its own, so b gets a monitor token of its own.
for r in $(seq 1 "$ROUNDS"); do
  for m in a:1 b:2; do
    n=${m%:*}; i=${m#*:}
    $A replay examples/calls/upset_caller.wav --protocol twilio --server ws://127.0.0.1:18701 \
      --token "$(cat "$D/$n.monitor")" --monitor http://127.0.0.1:5170$i --speed 2 \
      --calls "$LAT_CALLS" --ramp-s 2 --quiet --call-id "lat$r$n" > "$D/lat$r$n.json" 2> "$D/lat$r$n.err"
    echo "round $r monitor on $n: cues $(field "$D/lat$r$n.json" "d['cues_seen']") latency_ms $(field "$D/lat$r$n.json" "d['latency_ms']") frames_late $(field "$D/lat$r$n.json" "d['frames_late']")"
  done
done
stop_nodes
fi

run_load() { # LABEL NODES [cluster]
  local label=$1 nodes=$2 mode=${3:-} per=$(( CALLS / $2 )) clients=() before=() i
  for i in $(seq 1 "$nodes"); do start_node "$label$i" "$i" $mode; done
  sleep 1
  for i in $(seq 1 "$nodes"); do before+=("$(cpu_of "$label$i" "$i")"); done
  local t0=$(date +%s.%N)
  for i in $(seq 1 "$nodes"); do
    $A replay $FILE --server http://127.0.0.1:5170$i --token "$(cat "$D/$label$i.ingest")" \
      --calls "$per" --speed 1 --ramp-s 2 --quiet --call-id "$label-n$i" > "$D/$label$i.json" 2> "$D/$label$i.err" &
    clients+=($!)
  done
  wait "${clients[@]}"
  local t1=$(date +%s.%N) cpu=0 late=0 failed=0 p99=""
  for i in $(seq 1 "$nodes"); do
    cpu=$(python3 -c "print($cpu + $(cpu_of "$label$i" "$i") - ${before[$((i-1))]})")
    late=$((late + $(field "$D/$label$i.json" "d.get('chunks_late', d.get('frames_late', 0))")))
    failed=$((failed + $(field "$D/$label$i.json" "d['calls_failed']")))
    p99="$p99 $(field "$D/$label$i.json" "d['latency_ms']['p99']")"
  done
  python3 -c "w=$t1-$t0; print(f'$label: $nodes node(s), $CALLS calls: server CPU {$cpu:.1f} s over {w:.1f} s = {$cpu/w:.2f} cores, {1000*$cpu/($CALLS*$FILE_S):.3f} ms per call-second; late $late, failed $failed, cue p99 per node:$p99 ms')"
  stop_nodes
}
echo "== 2. cost: $CALLS real-time gRPC calls of $(basename $FILE)"
has single && run_load single 1
has one && run_load one 1 cluster
has two && run_load two 2 cluster
has three && run_load three 3 cluster
true
