#!/usr/bin/env bash
# Plaintext vs TLS, both with an ingest token and the store on: N concurrent real-time calls of
# one recording (default upset_caller.wav) from `attune replay --calls N --speed 1`, client on
# the same machine, a fresh `attune serve --db` per run, plaintext first. Builds nothing.
#
# Usage: benches/load_tls.sh BINARY [N=1000] [WAV=examples/calls/upset_caller.wav]
#   e.g. cargo build --release && benches/load_tls.sh target/release/attune 1000
# Prints one table (also in $D/table.txt); raw replay summaries, server logs, /proc samples in
# $D = ${TMPDIR:-/tmp}/attune-load-tls/. Server CPU = utime+stime of the server process over the
# replay (from /proc/PID/stat), client CPU the same for the replay process; server RSS is read
# from /proc/PID/status right after the replay (VmRSS) and its peak (VmHWM), divided by N.
set -u
cd "$(dirname "$0")/.."
A=${1:?usage: benches/load_tls.sh BINARY [N] [WAV]}
A=$(realpath "$A")
N=${2:-1000}
WAV=${3:-examples/calls/upset_caller.wav}
GRPC=127.0.0.1:${ATTUNE_LOAD_GRPC_PORT:-50171}
HTTP=127.0.0.1:${ATTUNE_LOAD_HTTP_PORT:-18171}
D=${TMPDIR:-/tmp}/attune-load-tls; rm -rf "$D"; mkdir -p "$D"
TICK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICK" '{print ($14+$15)/t}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# A private CA and a server certificate it signs (rustls refuses a CA certificate as the
# server's own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/ca.key" \
  -out "$D/ca.pem" -days 1 -subj /CN=attune-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$D/key.pem" \
  -out "$D/srv.csr" -subj /CN=127.0.0.1 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" > "$D/ext.cnf"
openssl x509 -req -in "$D/srv.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
  -out "$D/cert.pem" -days 1 -extfile "$D/ext.cnf" 2>/dev/null

for mode in plain tls; do
  T=$("$A" tokens create --role ingest --teams '*' --db "$D/$mode.db" 2>/dev/null | tail -1)
  if [ "$mode" = tls ]; then
    "$A" serve --db "$D/$mode.db" --grpc $GRPC --http $HTTP --max-calls $((N + 100)) \
      --tls-cert "$D/cert.pem" --tls-key "$D/key.pem" > "$D/$mode.serve.log" 2>&1 &
    URL=https://$GRPC; EXTRA=(--ca "$D/ca.pem"); HEALTH=(curl -fs --cacert "$D/ca.pem" https://$HTTP/healthz)
  else
    "$A" serve --db "$D/$mode.db" --grpc $GRPC --http $HTTP --max-calls $((N + 100)) \
      > "$D/$mode.serve.log" 2>&1 &
    URL=http://$GRPC; EXTRA=(); HEALTH=(curl -fs http://$HTTP/healthz)
  fi
  SP=$!
  for _ in $(seq 100); do "${HEALTH[@]}" > /dev/null 2>&1 && break; sleep 0.2; done
  echo "load before $mode: $(cat /proc/loadavg)" >> "$D/loadavg.txt"
  S0=$(cpu_s $SP)
  "$A" replay "$WAV" --server "$URL" "${EXTRA[@]}" --token "$T" --calls "$N" --speed 1.0 \
    --quiet --ramp-s 1 > "$D/$mode.json" 2> "$D/$mode.err" &
  CP=$!
  # The client's CPU: sampled until it exits (its /proc entry goes with it).
  C=0; while kill -0 $CP 2> /dev/null; do C=$(cpu_s $CP 2> /dev/null || echo "$C"); sleep 0.5; done
  wait $CP; RC=$?
  S1=$(cpu_s $SP); RSS=$(kib $SP VmRSS); HWM=$(kib $SP VmHWM)
  echo "$mode rc=$RC server_cpu_s=$(echo "$S1 - $S0" | bc) client_cpu_s=$C rss_kib=$RSS hwm_kib=$HWM" >> "$D/proc.txt"
  echo "$mode $S0 $S1 $C $RSS $HWM $RC" > "$D/$mode.proc"
  kill -INT $SP; for _ in $(seq 50); do kill -0 $SP 2> /dev/null || break; sleep 0.2; done
  kill -9 $SP 2> /dev/null; wait $SP 2> /dev/null
done

python3 - "$D" "$N" <<'PY' | tee "$D/table.txt"
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
rows = {}
for mode in ("plain", "tls"):
    try:
        s = json.loads(open(f"{d}/{mode}.json").read().splitlines()[-1])
    except Exception as e:  # a failed run still gets its column
        s = {}
    _, s0, s1, c, rss, hwm, rc = open(f"{d}/{mode}.proc").read().split()
    wall = s.get("wall_s") or float("nan")
    server_s, client_s = float(s1) - float(s0), float(c)
    silence = [q["latency_ms"] for q in s.get("cues", []) if q.get("kind") == "extended_silence"
               and q.get("event") == "close" and q.get("latency_ms") is not None]
    silence.sort()
    pct = lambda v, q: v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
    lat, ack = s.get("latency_ms", {}), s.get("ack_latency_ms", {})
    rows[mode] = [
        f"{s.get('calls', '?')} / {s.get('calls_failed', '?')}" + ("" if rc == "0" else f" (rc {rc})"),
        f"{wall}",
        f"{s.get('chunks_sent', '?')} / {s.get('chunks_acked', '?')}",
        f"{s.get('chunks_late', '?')}",
        f"{ack.get('p50')} / {ack.get('p99')}",
        f"{lat.get('p50')} / {lat.get('p95')} / {lat.get('p99')}",
        f"{pct(silence, 0.5)} / {pct(silence, 0.99)} ({len(silence)})",
        f"{server_s:.1f} s = {server_s / wall:.2f}",
        f"{client_s:.1f} s = {client_s / wall:.2f}",
        f"{int(rss) / 1024 / n:.2f} / {int(hwm) / 1024 / n:.2f}",
    ]
names = ["calls / failed", "wall s", "chunks sent / acked", "chunks late (> 1 chunk behind)",
         "ack latency p50 / p99 ms", "cue latency p50 / p95 / p99 ms",
         "extended_silence close latency p50 / p99 ms (cues)", "server CPU (cores)",
         "client CPU (cores)", "server RSS after / peak, MiB per call"]
print(f"| {n} calls, 100 ms chunks, token + store | plaintext | TLS |")
print("|---|---|---|")
for i, name in enumerate(names):
    print(f"| {name} | {rows['plain'][i]} | {rows['tls'][i]} |")
PY
echo "load averages: $(tr '\n' ';' < "$D/loadavg.txt")"
