#!/usr/bin/env bash
# Load test of `vecstash serve` with wrk: 64 connections for 30 s against search, then against synced
# upserts, on a collection of 20,000 random 128-d points (int8 codes, cosine, float32 rescoring).
# Fails when any response is not 2xx, when the server dies, or when it does not shut down cleanly.
# Usage: scripts/load_test.sh [BUILD_DIR]   (env: CONNECTIONS=64 DURATION=30s THREADS=2 POINTS=20000)
# Output: a summary on stdout; wrk's full reports in out/load-test/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN="$BUILD/tools/vecstash"
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-30s}
THREADS=${THREADS:-2}
POINTS=${POINTS:-20000}
DIM=128
OUTDIR=out/load-test
command -v wrk >/dev/null || { echo "load_test: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "load_test: $BIN not built (make build)" >&2; exit 1; }

rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
"$BIN" serve --data-dir "$OUTDIR/data" --port 0 --port-file "$OUTDIR/port" >"$OUTDIR/server.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$OUTDIR/port" ] && break; sleep 0.1; done
PORT=$(cat "$OUTDIR/port")
URL="http://127.0.0.1:$PORT"
echo "load_test: server pid $SERVER on $URL; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# Collection and data: POINTS random points in batches of 500 (Python, standard library only).
python3 - "$URL" "$POINTS" "$DIM" <<'PY'
import json, random, sys, urllib.request
url, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def call(method, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200, r.read()
call("PUT", "/collections/load", {"vectors": {"size": dim, "distance": "Cosine"},
                                   "vecstash": {"calibration_sample": 5000}})
rng = random.Random(7)
for start in range(0, n, 500):
    pts = [{"id": i, "vector": [rng.uniform(-1, 1) for _ in range(dim)], "payload": {"group": i % 10}}
           for i in range(start, min(n, start + 500))]
    call("PUT", "/collections/load/points?wait=true", {"points": pts})
print(f"load_test: {n} points of dimension {dim} loaded")
PY

run() {
  local name=$1 script=$2
  echo "load_test: $name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
  DIM=$DIM COLLECTION=load wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency \
    -s "scripts/load/$script" "$URL" | tee "$OUTDIR/$name.txt"
  if grep -q "Non-2xx" "$OUTDIR/$name.txt"; then
    echo "load_test: FAILED: $name had non-2xx responses" >&2
    exit 1
  fi
  if grep -q "Socket errors" "$OUTDIR/$name.txt"; then
    echo "load_test: FAILED: $name had socket errors" >&2
    exit 1
  fi
  kill -0 $SERVER || { echo "load_test: FAILED: the server died" >&2; exit 1; }
}
run search search.lua
run upsert upsert.lua
curl -fsS "$URL/metrics" >"$OUTDIR/metrics.txt"
curl -fsS "$URL/collections/load/compression?sample=100" >"$OUTDIR/compression.json"

kill -TERM $SERVER
trap - EXIT
if wait $SERVER; then
  echo "load_test: server shut down cleanly (exit 0)"
else
  echo "load_test: FAILED: the server exited with $?" >&2
  exit 1
fi
echo
echo "== summary ($CONNECTIONS connections, $DURATION each, wrk threads $THREADS)"
for name in search upsert; do
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUTDIR/$name.txt")
  lat=$(awk '/Latency Distribution/ {f=1; next} f && /%/ {sub("%", "", $1); printf "p%s %s  ", $1, $2} /99%/ {f=0}' "$OUTDIR/$name.txt")
  total=$(awk '/requests in/ {print $1}' "$OUTDIR/$name.txt")
  extra=""
  [ "$name" = upsert ] && extra=" = $(awk -v r="$rps" -v b="${BATCH:-8}" 'BEGIN {printf "%.0f", r * b}') points/s (synced)"
  echo "$name: $rps requests/s$extra ($total requests, 0 errors); latency $lat"
done
