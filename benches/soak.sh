#!/usr/bin/env bash
# Soak: CALLS speech-dense gRPC calls (upset_caller.wav, 95.8 s, speech nearly throughout) kept
# live at real time for DURATION_S seconds against one release `attune serve`, the client on the
# same machine. `attune replay --duration-s` follows each call, once its last chunk is sent, with
# the next one at once, so CALLS calls are live from the end of the ramp to the end. Every
# SAMPLE_S seconds: the server's RSS (VmRSS of /proc/PID/status), open fds (/proc/PID/fd), CPU
# (utime+stime of /proc/PID/stat), live calls (/metrics), the load average and the compilers
# running (other builds on the shared machine). At the end: calls, chunks sent/acked, late chunks
# (and in which minutes), dropped, calls stored, RSS and fds at start/end with the least-squares
# slope per hour, server and client CPU.
#   benches/soak.sh [CALLS] [DURATION_S] [SAMPLE_S]        (defaults 300 3600 15)
# Build first: cargo build --release (or A=path/to/attune benches/soak.sh ...).
# Results: the summary on stdout; samples, logs and the store in $SOAK_DIR (target/soak).
set -u
cd "$(dirname "$0")/.."
A=${A:-$PWD/target/release/attune}
N=${1:-300}; DUR=${2:-3600}; EVERY=${3:-15}
CALL=${CALL:-examples/calls/upset_caller.wav}
RAMP=${RAMP_S:-30}
D=${SOAK_DIR:-$PWD/target/soak}
rm -rf "$D"; mkdir -p "$D"
GRPC=127.0.0.1:50191; HTTP=127.0.0.1:18191
TICK=$(getconf CLK_TCK)
ING=$($A tokens create --role ingest --teams '*' --db "$D/soak.db" 2>/dev/null | tail -1)
MON=$($A tokens create --role monitor --teams '*' --db "$D/soak.db" 2>/dev/null | tail -1)
$A serve --db "$D/soak.db" --grpc $GRPC --http $HTTP --max-calls $((N + 100)) \
  --drain-timeout-s 300 > "$D/serve.log" 2>&1 &
SP=$!
for _ in $(seq 100); do curl -fs http://$HTTP/healthz > /dev/null 2>&1 && break; sleep 0.2; done
kill -0 $SP 2>/dev/null || { echo "attune serve did not start: $(cat "$D/serve.log")" >&2; exit 1; }

sample() { # t_s rss_kb fds cpu_s live load1 compilers
  local rss fds cpu live comp
  rss=$(awk '/^VmRSS:/ {print $2}' /proc/$SP/status 2>/dev/null) || return
  fds=$(ls /proc/$SP/fd 2>/dev/null | wc -l)
  cpu=$(awk -v t="$TICK" '{print ($14+$15)/t}' /proc/$SP/stat 2>/dev/null)
  live=$(curl -s -m 5 -H "Authorization: Bearer $MON" http://$HTTP/metrics | awk '/^attune_live_calls / {print $2}')
  comp=$(ps -eo comm= | grep -cE '^(rustc|cc1|cc1plus|ld|lld|mold|cargo|clippy-driver)$|_frame$|^decode_wav$|^g711$|^grpc_session$|^rules_toml$|^http_query_form$')
  echo "$(date +%s.%N) ${rss:-0} $fds ${cpu:-0} ${live:-0} $(cut -d' ' -f1 /proc/loadavg) $comp"
}
sample > "$D/samples.txt"
( while kill -0 $SP 2>/dev/null; do sleep "$EVERY"; sample; done ) >> "$D/samples.txt" &
SAMPLER=$!
t0=$(date +%s.%N)
/usr/bin/time -v $A replay $CALL --server http://$GRPC --token "$ING" --calls "$N" --speed 1 \
  --ramp-s "$RAMP" --duration-s "$DUR" --call-id soak --quiet > "$D/replay.json" 2> "$D/replay.time"
t1=$(date +%s.%N)
sample >> "$D/samples.txt"
kill $SAMPLER 2>/dev/null; wait $SAMPLER 2>/dev/null
kill -TERM $SP; wait $SP
stored=$(python3 -c "import sqlite3; print(sqlite3.connect('$D/soak.db').execute(\"select count(*) from calls where call_id like 'soak-%'\").fetchone()[0])")
python3 - "$D" "$t0" "$t1" "$RAMP" "$stored" <<'PY'
import json, re, sys
d, t0, t1, ramp, stored = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
try:
    s = json.loads(open(f"{d}/replay.json").read().strip().splitlines()[-1])
except (IndexError, ValueError):
    sys.exit(f"no replay summary: {open(d + '/replay.time').read()[-2000:]}")
rows = [l.split() for l in open(f"{d}/samples.txt") if l.strip()]
rows = [(float(r[0]) - t0, int(r[1]), int(r[2]), float(r[3]), float(r[4]), float(r[5]), int(r[6])) for r in rows if len(r) == 7]
dur, audio_s = s["duration_s"], s["audio_s"]
# Steady state: from the ramp's end plus one recording (every slot has rolled over once) to
# the last call's start (after it the calls only end).
steady = [r for r in rows if ramp + audio_s <= r[0] <= dur]
def slope_per_h(points):
    n = len(points)
    if n < 2:
        return None
    mx, my = sum(p[0] for p in points) / n, sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx * 3600 if sxx else None
rss = [(r[0], r[1] / 1024) for r in steady]
fds = [(r[0], r[2]) for r in steady]
live_after_ramp = [r[4] for r in rows if ramp + 2 <= r[0] <= dur]
t = open(f"{d}/replay.time").read()
client_cpu = sum(float(re.search(p + r": ([\d.]+)", t).group(1)) for p in (r"User time \(seconds\)", r"System time \(seconds\)"))
late_min = s.get("chunks_late_by_minute", {})
comp_by_min = {}
for r in rows:
    comp_by_min.setdefault(str(int(max(r[0], 0) // 60)), []).append(r[6])
wall = t1 - t0
cpu = rows[-1][3] - rows[0][3]
out = {
    "calls": s["calls"], "live_slots": s["live_slots"], "duration_s": dur, "wall_s": round(wall, 1),
    "live_calls_min_max_after_ramp": [min(live_after_ramp, default=None), max(live_after_ramp, default=None)],
    "chunks_sent": s["chunks_sent"], "chunks_acked": s["chunks_acked"], "chunks_late": s["chunks_late"],
    "dropped_chunks": s["chunks_sent"] - s["chunks_acked"], "calls_failed": s["calls_failed"],
    "errors": s["errors"], "end_reasons": s["end_reasons"], "calls_stored": stored,
    "send_lag_ms": s["send_lag_ms"], "ack_latency_ms": s["ack_latency_ms"], "cue_latency_ms": s["latency_ms"],
    "samples": len(rows), "steady_samples": len(steady),
    "rss_mb_idle": round(rows[0][1] / 1024, 1),
    "rss_mb_start_end": [round(rss[0][1], 1), round(rss[-1][1], 1)] if rss else None,
    "rss_mb_min_max": [round(min(v for _, v in rss), 1), round(max(v for _, v in rss), 1)] if rss else None,
    "rss_slope_mb_per_h": round(slope_per_h(rss), 2) if slope_per_h(rss) is not None else None,
    "fds_idle": rows[0][2],
    "fds_start_end": [fds[0][1], fds[-1][1]] if fds else None,
    "fds_min_max": [min(v for _, v in fds), max(v for _, v in fds)] if fds else None,
    "fd_slope_per_h": round(slope_per_h(fds), 2) if slope_per_h(fds) is not None else None,
    "server_cpu_s": round(cpu, 1), "server_cores": round(cpu / wall, 2),
    "client_cpu_s": round(client_cpu, 1), "client_cores": round(client_cpu / wall, 2),
    "load1_max": max(r[5] for r in rows),
    "late_chunks_by_minute_with_compilers_running": {m: [n, max(comp_by_min.get(m, [0]))] for m, n in late_min.items()},
}
print(json.dumps(out))
PY
grep -cE "not stored|trying again|panicked" "$D/serve.log" | sed 's/^/serve.log lines with not stored|trying again|panicked: /'
