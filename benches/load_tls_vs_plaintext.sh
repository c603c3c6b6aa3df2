#!/usr/bin/env bash
# Plaintext+token vs TLS+token, 1000 concurrent real-time calls, fresh server each.
set -u
cd "$(dirname "$0")/.."
A=target/release/attune  # build it first: cargo build --release
D=${TMPDIR:-/tmp}/attune-load; mkdir -p "$D"
# A private CA and a server certificate it signs (a self-signed CA certificate cannot be the
# server's own: rustls refuses a CA as an end entity).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $D/ca.key -out $D/ca.pem -days 1 -subj /CN=attune-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $D/key.pem -out $D/srv.csr -subj /CN=127.0.0.1 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" > $D/ext.cnf
openssl x509 -req -in $D/srv.csr -CA $D/ca.pem -CAkey $D/ca.key -CAcreateserial -out $D/cert.pem -days 1 -extfile $D/ext.cnf 2>/dev/null
for mode in plain tls; do
  rm -f $D/$mode.db*
  T=$($A tokens create --role ingest --teams '*' --db $D/$mode.db 2>/dev/null | tail -1)
  M=$($A tokens create --role monitor --teams '*' --db $D/$mode.db 2>/dev/null | tail -1)
  if [ $mode = tls ]; then
    $A serve --db $D/$mode.db --grpc 127.0.0.1:50151 --http 127.0.0.1:18080 --tls-cert $D/cert.pem --tls-key $D/key.pem > $D/$mode.serve.log 2>&1 &
    URL=https://127.0.0.1:50151; EXTRA="--ca $D/ca.pem"; MURL=https://127.0.0.1:18080/metrics; CURL="--cacert $D/ca.pem"
  else
    $A serve --db $D/$mode.db --grpc 127.0.0.1:50151 --http 127.0.0.1:18080 > $D/$mode.serve.log 2>&1 &
    URL=http://127.0.0.1:50151; EXTRA=""; MURL=http://127.0.0.1:18080/metrics; CURL=""
  fi
  SP=$!
  sleep 2
  echo "load before $mode: $(cat /proc/loadavg)" > $D/$mode.load
  /usr/bin/time -v $A replay examples/calls/upset_caller.wav --server $URL $EXTRA --token $T --calls 1000 --speed 1.0 --quiet --ramp-s 1 > $D/$mode.json 2> $D/$mode.time
  curl -s $CURL -H "Authorization: Bearer $M" $MURL | grep -E '^(process_cpu_seconds_total|process_resident_memory_bytes)' > $D/$mode.metrics
  kill -INT $SP; sleep 5; kill -9 $SP 2>/dev/null
  wait $SP 2>/dev/null
done
echo done > $D/done
