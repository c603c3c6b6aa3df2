#!/usr/bin/env bash
# Telephony adapters under load, fresh server per run, client on the same machine:
#  1. cost: N calls of upset_caller.wav per protocol (grpc, twilio, audiohook, audiosocket) at
#     --speed S; the server's CPU (utime+stime from /proc) per second of call audio.
#  2. load: 300 concurrent Twilio both-track streams at real time, cue latency from the Monitor
#     stream (`attune replay --monitor`), late frames, the server's CPU.
# Build first: cargo build --release.  Usage: benches/load_telephony.sh [COST_CALLS] [SPEED] [LOAD_CALLS]
set -u
cd "$(dirname "$0")/.."
A=$PWD/target/release/attune
CALL=examples/calls/upset_caller.wav
COST_CALLS=${1:-100}; SPEED=${2:-4}; LOAD_CALLS=${3:-300}
D=${TMPDIR:-/tmp}/attune-telephony-load; rm -rf "$D"; mkdir -p "$D"
TICK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICK" '{print ($14+$15)/t}' "/proc/$1/stat"; }
start_server() { # name
  rm -f "$D/$1.db"*
  MON=$($A tokens create --role monitor --teams '*' --db "$D/$1.db" 2>/dev/null | tail -1)
  ING=$($A tokens create --role ingest --teams '*' --db "$D/$1.db" 2>/dev/null | tail -1)
  $A serve --db "$D/$1.db" --grpc 127.0.0.1:50161 --http 127.0.0.1:18161 --audiosocket 127.0.0.1:18162 \
    --allow-unsigned-telephony --max-calls 2000 > "$D/$1.serve.log" 2>&1 &
  SP=$!
  for _ in $(seq 50); do curl -fs http://127.0.0.1:18161/healthz >/dev/null 2>&1 && break; sleep 0.2; done
  CPU0=$(cpu_s $SP)
}
stop_server() {
  CPU1=$(cpu_s $SP)
  kill -TERM $SP; wait $SP 2>/dev/null
}
server_of() {
  case $1 in
    grpc) echo http://127.0.0.1:50161 ;; twilio|audiohook) echo ws://127.0.0.1:18161 ;; audiosocket) echo 127.0.0.1:18162 ;;
  esac
}
AUDIO_S=95.81
echo "protocol calls speed server_cpu_s cpu_ms_per_call_second late" | tee "$D/cost.txt"
for p in grpc twilio audiohook audiosocket; do
  start_server cost-$p
  $A replay $CALL --protocol $p --server "$(server_of $p)" --token "$ING" --calls "$COST_CALLS" \
    --speed "$SPEED" --quiet --ramp-s 1 > "$D/cost-$p.json" 2> "$D/cost-$p.err"
  sleep 1; stop_server
  late=$(python3 -c "import json,sys; d=json.loads(open('$D/cost-$p.json').read().splitlines()[-1]); print(d.get('frames_late', d.get('chunks_late')))" 2>/dev/null)
  python3 -c "c=$CPU1-$CPU0; print('$p', $COST_CALLS, $SPEED, round(c,2), round(c*1000/($COST_CALLS*$AUDIO_S),3), '$late')" | tee -a "$D/cost.txt"
done
start_server load
echo "load before: $(cat /proc/loadavg)" > "$D/load.txt"
/usr/bin/time -v $A replay $CALL --protocol twilio --server ws://127.0.0.1:18161 --monitor http://127.0.0.1:50161 \
  --token "$MON" --calls "$LOAD_CALLS" --speed 1 --quiet --ramp-s 2 > "$D/load.json" 2> "$D/load.time"
stop_server
python3 - "$D" "$CPU0" "$CPU1" "$LOAD_CALLS" <<'PY' | tee -a "$D/load.txt"
import json, sys, re
d, c0, c1, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = json.loads(open(f"{d}/load.json").read().splitlines()[-1])
t = open(f"{d}/load.time").read()
client_cpu = sum(float(re.search(p + r": ([\d.]+)", t).group(1)) for p in ("User time \(seconds\)", "System time \(seconds\)"))
print(json.dumps({"calls": s["calls"], "calls_failed": s["calls_failed"], "frames_sent": s["frames_sent"],
  "frames_late": s["frames_late"], "closes": s["closes"], "cues_seen": s["cues_seen"],
  "cue_latency_ms": s["latency_ms"], "send_lag_ms": s["send_lag_ms"], "wall_s": s["wall_s"],
  "server_cpu_s": round(c1 - c0, 1), "server_cores": round((c1 - c0) / s["wall_s"], 2),
  "client_cpu_s": round(client_cpu, 1)}))
PY
