#!/usr/bin/env bash
# Abuse of the HTTP listener (issue 17), against a fresh `attune serve` each:
#   uploads:   PARALLEL (8) uploads of a SIZE_MB (240) MB WAV at once; the server's peak
#              resident memory (VmHWM of /proc/PID/status) before and after, and each answer.
#              The WAV is mono (valid header, silent data): the server holds and reads the whole
#              body, then refuses it (422) without scoring, so the peak is what receiving costs.
#   slowloris: CONNS (1000) connections that send a request line and then one header byte
#              every second; how many are still open just after the header timeout (default 10 s),
#              and whether /healthz answers meanwhile.
# ATTUNE=path/to/attune (default target/release/attune; build it first), EXTRA="flags for serve".
#   benches/upload_abuse.sh [uploads|slowloris|all]
set -u
cd "$(dirname "$0")/.."
A=${ATTUNE:-$PWD/target/release/attune}
MODE=${1:-all}; PARALLEL=${PARALLEL:-8}; SIZE_MB=${SIZE_MB:-240}; CONNS=${CONNS:-1000}
EXTRA=${EXTRA:-}
D=${TMPDIR:-/tmp}/attune-upload-abuse; rm -rf "$D"; mkdir -p "$D"
PORT=18191
printf 'secret-pass-123\n' | $A users add qa --role qa --password-stdin --db "$D/abuse.db" > /dev/null
# shellcheck disable=SC2086
$A serve --db "$D/abuse.db" --grpc 127.0.0.1:50191 --http 127.0.0.1:$PORT $EXTRA > "$D/serve.log" 2>&1 &
SP=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:$PORT/healthz > /dev/null && break; sleep 0.2; done
hwm() { awk '/^VmHWM/ {print int($2/1024)}' /proc/$SP/status; }
rss() { awk '/^VmRSS/ {print int($2/1024)}' /proc/$SP/status; }
echo "attune serve pid $SP ($A${EXTRA:+ $EXTRA}); VmHWM at start: $(hwm) MiB"

if [ "$MODE" = uploads ] || [ "$MODE" = all ]; then
  python3 - "$D/big.wav" "$SIZE_MB" <<'PY'
import struct, sys
path, size = sys.argv[1], int(sys.argv[2]) << 20
data = size - 44
head = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) \
    + b"data" + struct.pack("<I", data)
with open(path, "wb") as f:
    f.write(head)
    f.truncate(size)
PY
  curl -s -c "$D/jar" -o /dev/null -d 'username=qa&password=secret-pass-123' http://127.0.0.1:$PORT/login
  CSRF=$(awk '$6 == "attune_csrf" {print $7}' "$D/jar")
  start=$(date +%s.%N)
  for i in $(seq "$PARALLEL"); do
    curl -s -b "$D/jar" -H "X-CSRF-Token: $CSRF" -H 'Content-Type: audio/wav' -X POST -T "$D/big.wav" \
      -o "$D/up$i.json" -w "%{http_code}\n" "http://127.0.0.1:$PORT/api/recordings?name=big$i.wav" > "$D/up$i.code" &
  done
  wait $(jobs -p | grep -v "^$SP$")
  ended=$(date +%s.%N)
  echo "uploads: $PARALLEL x $SIZE_MB MB in $(python3 -c "print(round($ended - $start, 1))") s; answers: $(cat "$D"/up*.code | sort | uniq -c | tr -s ' \n' ' ')"
  for i in 1 2; do echo "  e.g. $(head -c 200 "$D/up$i.json")"; done
  echo "uploads: server VmHWM (peak RSS) $(hwm) MiB, VmRSS now $(rss) MiB"
fi

if [ "$MODE" = slowloris ] || [ "$MODE" = all ]; then
  python3 - "$PORT" "$CONNS" <<'PY'
import socket, sys, time, threading, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
socks, open_ = [], set()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s.setblocking(False)
    socks.append(s); open_.add(i)
start = time.time()
print(f"slowloris: {n} connections opened; one header byte each every second")
def closed(s):
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
healthz = None
for tick in range(0, 16):
    for i in list(open_):
        s = socks[i]
        try:
            if closed(s):
                open_.discard(i); continue
            s.send(b"a")
        except OSError:
            open_.discard(i)
    if tick == 2:
        t0 = time.time()
        try:
            code = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
        except Exception as e:
            code = repr(e)
        healthz = f"{code} in {round((time.time() - t0) * 1000)} ms"
    print(f"  t={round(time.time() - start, 1):5} s: {len(open_)} still open")
    time.sleep(1)
print(f"slowloris: /healthz meanwhile: {healthz}; still open after {round(time.time() - start, 1)} s: {len(open_)} of {n}")
PY
fi
kill -TERM $SP; wait $SP
