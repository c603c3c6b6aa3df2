#!/usr/bin/env bash
# Burst: N live calls ending within about a second, then how many the store holds.
# Run twice: as is, and with LOCK_S=30 (another connection holds the SQLite write lock for 30 s
# while the calls end). Build first: cargo build --release.
#   benches/burst_store.sh [CALLS] [LOCK_S]
set -u
cd "$(dirname "$0")/.."
A=$PWD/target/release/attune
N=${1:-2000}; LOCK_S=${2:-0}
D=${TMPDIR:-/tmp}/attune-burst; rm -rf "$D"; mkdir -p "$D"
# The first 5 s of the upset example call, as its own file.
python3 - "$D/short.wav" <<'PY'
import struct, sys
b = open("examples/calls/upset_caller.wav", "rb").read()
i, chunks = 12, {}
while i < len(b):
    n = struct.unpack("<I", b[i+4:i+8])[0]; chunks[b[i:i+4]] = b[i+8:i+8+n]; i += 8 + n + (n & 1)
fmt, data = chunks[b"fmt "], chunks[b"data"][:8000 * 2 * 5]
body = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
PY
T=$($A tokens create --role ingest --teams '*' --db "$D/burst.db" 2>/dev/null | tail -1)
$A serve --db "$D/burst.db" --grpc 127.0.0.1:50171 --http 127.0.0.1:18171 --max-calls $((N + 100)) \
  --drain-timeout-s 300 > "$D/serve.log" 2>&1 &
SP=$!
sleep 2
if [ "$LOCK_S" != 0 ]; then
  python3 -c "import sqlite3,time; c=sqlite3.connect('$D/burst.db', isolation_level=None); c.execute('BEGIN IMMEDIATE'); time.sleep(4 + $LOCK_S); c.execute('COMMIT')" &
  LP=$!
fi
start=$(date +%s.%N)
$A replay "$D/short.wav" --server http://127.0.0.1:50171 --token "$T" --calls "$N" --ramp-s 1 --quiet > "$D/replay.json"
ended=$(date +%s.%N)
[ "$LOCK_S" != 0 ] && wait $LP
kill -TERM $SP; wait $SP
stored=$(python3 -c "import sqlite3; print(sqlite3.connect('$D/burst.db').execute(\"select count(*) from calls\").fetchone()[0])")
python3 - "$D/replay.json" "$N" "$LOCK_S" "$stored" "$start" "$ended" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(json.dumps({"calls": int(sys.argv[2]), "lock_s": float(sys.argv[3]), "ended": s["end_reasons"],
  "calls_failed": s["calls_failed"], "stored": int(sys.argv[4]),
  "replay_wall_s": round(float(sys.argv[6]) - float(sys.argv[5]), 1)}))
PY
grep -E "not stored|trying again" "$D/serve.log" | head -3
