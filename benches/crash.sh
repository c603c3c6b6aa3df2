#!/usr/bin/env bash
# Crash: N live calls and E ended calls (their store writes held up by a locked database, so
# they wait in the spool), then kill -9 of `attune serve`, a restart on the same database and
# spool, and what the store holds: ended calls stored (and duplicates), live calls stored as
# interrupted, calls lost, the SQLite integrity check. Then the batch: `attune analyze` killed
# half-way and run again (what it skips, what it scores).
#   benches/crash.sh [LIVE_CALLS] [ENDED_CALLS] [BATCH_FILES]
# Build first: cargo build --release (or A=target/debug/attune benches/crash.sh ...).
set -u
cd "$(dirname "$0")/.."
A=${A:-$PWD/target/release/attune}
N=${1:-500}; E=${2:-50}; B=${3:-20}
D=${TMPDIR:-/tmp}/attune-crash; rm -rf "$D"; mkdir -p "$D"
GRPC=127.0.0.1:50181; HTTP=127.0.0.1:18181
# The first 3 s of the upset example call, as its own file (the ended calls).
python3 - "$D/short.wav" <<'PY'
import struct, sys
b = open("examples/calls/upset_caller.wav", "rb").read()
i, chunks = 12, {}
while i < len(b):
    n = struct.unpack("<I", b[i+4:i+8])[0]; chunks[b[i:i+4]] = b[i+8:i+8+n]; i += 8 + n + (n & 1)
fmt, data = chunks[b"fmt "], chunks[b"data"]
bps = struct.unpack("<I", fmt[8:12])[0]
data = data[:bps * 3]
body = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
PY
T=$($A tokens create --role ingest --teams '*' --db "$D/crash.db" 2>/dev/null | tail -1)
serve() {
  $A serve --db "$D/crash.db" --grpc $GRPC --http $HTTP --max-calls $((N + E + 100)) \
    --drain-timeout-s 300 >> "$D/serve.log" 2>&1 &
  SP=$!
  for _ in $(seq 100); do grep -q "gRPC on" "$D/serve.log" 2>/dev/null && break; sleep 0.2; done
}
count() { find "$1" -maxdepth 1 -name "$2" 2>/dev/null | wc -l; }
serve
# N long calls (calm.wav, 61 s), started over 5 s: live at the kill.
$A replay examples/calls/calm.wav --server http://$GRPC --token "$T" --calls "$N" --call-id live \
  --ramp-s 5 --quiet > "$D/live.json" 2>&1 &
LR=$!
for _ in $(seq 600); do [ "$(count "$D/crash.db.spool/live" '*.json')" -ge "$N" ] && break; sleep 0.1; done
live_marked=$(count "$D/crash.db.spool/live" '*.json')
# The database locked by another connection: the ended calls wait in the spool.
python3 -c "import sqlite3,time; c=sqlite3.connect('$D/crash.db', isolation_level=None); c.execute('BEGIN IMMEDIATE'); time.sleep(600)" &
LP=$!
sleep 0.5
$A replay "$D/short.wav" --server http://$GRPC --token "$T" --calls "$E" --call-id ended \
  --ramp-s 1 --quiet > "$D/ended.json" 2>&1
spooled=$(count "$D/crash.db.spool" '*.call.json')
kill -9 $SP; wait $SP 2>/dev/null
kill $LR $LP 2>/dev/null; wait $LR $LP 2>/dev/null
echo "--- restart" >> "$D/serve.log"
t0=$(date +%s.%N)
serve
for _ in $(seq 1200); do
  [ "$(count "$D/crash.db.spool" '*.call.json')" = 0 ] && [ "$(count "$D/crash.db.spool/recovering" '*.json')" = 0 ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
kill -TERM $SP; wait $SP
python3 - "$D/crash.db" "$N" "$E" "$live_marked" "$spooled" "$t0" "$t1" <<'PY'
import json, sqlite3, sys
db, n, e, marked, spooled, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
c = sqlite3.connect(db)
q = lambda sql: c.execute(sql).fetchone()[0]
ended = q("select count(*) from calls where call_id like 'ended-%' and source = 'live'")
interrupted = q("select count(*) from calls where call_id like 'live-%' and source = 'interrupted'")
scored_interrupted = q("select count(*) from calls where source = 'interrupted' and score_pct is not null")
print(json.dumps({"live_calls": n, "live_marked_at_kill": marked, "ended_calls": e,
  "spooled_at_kill": spooled, "ended_stored": ended, "interrupted_stored": interrupted,
  "interrupted_with_a_score": scored_interrupted,
  "lost": (e - ended) + (n - interrupted),
  "integrity_check": q("pragma integrity_check"), "recovery_s": round(t1 - t0, 1)}))
PY
grep -E "spool .*stored again|integrity_check|quick_check" "$D/serve.log" | head -3

# The batch: copies of the example calls, `attune analyze` killed half-way, then run again.
mkdir -p "$D/batch"
for i in $(seq "$B"); do cp examples/calls/calm.wav "$D/batch/c$i.wav"; done
$A analyze "$D/batch" --out "$D/results" --db "$D/batch.db" --jobs 1 > "$D/analyze1.log" 2>&1 &
AP=$!
for _ in $(seq 600); do [ "$(count "$D/results" '*.json')" -ge $((B / 2)) ] && break; sleep 0.1; done
kill -9 $AP; wait $AP 2>/dev/null
before=$(count "$D/results" '*.json')
$A analyze "$D/batch" --out "$D/results" --db "$D/batch.db" --jobs 1 > "$D/analyze2.log" 2>&1
python3 - "$D/batch.db" "$B" "$before" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(json.dumps({"batch_files": int(sys.argv[2]), "results_at_kill": int(sys.argv[3]),
  "stored_after_rerun": c.execute("select count(*) from calls").fetchone()[0],
  "integrity_check": c.execute("pragma integrity_check").fetchone()[0]}))
PY
tail -1 "$D/analyze2.log"
