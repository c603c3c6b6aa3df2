#!/usr/bin/env bash
# Interoperability check with Genesys' own AudioHook client (purecloudlabs/audiohook-reference-
# implementation, MIT): `attune serve` with AudioHook keys, the reference client streams an example
# call; it must be signature-verified, `opened`, its pings answered, `closed` with 1000, and the
# call stored with the agent and team of its customConfig. A wrong client secret must get HTTP 401.
#
#   tests/interop/audiohook_reference_client.sh [REFERENCE_CHECKOUT]
#
# Without a checkout it clones the repository. Needs node >= 18 and npm (the client is TypeScript
# run by ts-node). Uses the release binary: `cargo build --release` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
attune="$root/target/release/attune"
work="$(mktemp -d "${TMPDIR:-/tmp}/attune-audiohook.XXXXXX")"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
ref="${1:-}"
if [ -z "$ref" ]; then
  git clone --quiet --depth 1 https://github.com/purecloudlabs/audiohook-reference-implementation "$work/ref"
  ref="$work/ref"
fi
cp -r "$ref" "$work/client-tree"
cd "$work/client-tree/client"
# Its lock files point to a private mirror; the app's own dependencies are not needed by the client.
rm -f package-lock.json
npm install --silent --no-audit --no-fund >/dev/null
ln -sfn ../client/node_modules ../app/node_modules

secret="$(head -c 32 /dev/urandom | base64)"
echo "attune-test-key $secret" > "$work/keys"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
grpc="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$attune" serve --http "127.0.0.1:$port" --grpc "127.0.0.1:$grpc" --db "$work/attune.db" \
  --audiohook-keys "$work/keys" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

run_client() { # secret, log
  script -qec "npx ts-node src/index.ts --uri ws://127.0.0.1:$port/ingest/audiohook \
    --api-key attune-test-key --client-secret $1 --wavfile $root/examples/calls/calm.wav \
    --custom-config '{\"agentId\":\"alice\",\"team\":\"billing\"}'" /dev/null 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g' >"$2" || true
}
run_client "$secret" "$work/client.log"
fail=0
check() { if grep -q "$2" "$1"; then echo "ok   $3"; else echo "FAIL $3"; fail=1; fi; }
check "$work/client.log" "onOpenedMessage - Session open" "opened (signature verified)"
check "$work/client.log" "onPongMessage" "pings answered"
check "$work/client.log" "onClosedMessage - Session closed" "closed"
check "$work/client.log" "Websocket close - Code: 1000" "websocket closed with 1000"
"$attune" calls --db "$work/attune.db" >"$work/calls.txt"
check "$work/calls.txt" "alice *billing" "stored with agent alice, team billing"
run_client "$(head -c 32 /dev/urandom | base64)" "$work/forged.log"
check "$work/forged.log" "Unexpected server response: 401" "a wrong client secret gets HTTP 401"
echo "pongs: $(grep -c onPongMessage "$work/client.log")"
if [ "$fail" != 0 ]; then
  echo "--- client log"; grep -v '^    p' "$work/client.log" | tail -40
  echo "--- server log"; tail -20 "$work/serve.log"
  exit 1
fi
echo "the AudioHook reference client interoperates"
