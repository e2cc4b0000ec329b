#!/usr/bin/env bash
# The demo: a vecstash server on a fresh data directory; a compressed collection (int8 codes, cosine)
# loaded over REST with `vecstash ingest`; a few nearest-neighbour queries with `vecstash query`; the
# collection and its compression report (bytes per vector, recall against float32) with
# `vecstash inspect`; then a clean shutdown. Usage: scripts/demo.sh [BUILD_DIR]
#
# Data: the 778 all-MiniLM-L6-v2 text embeddings of ../shared/data/minilm_fiori (with each chunk's
# title and category as payload) when present; else the SciFact corpus as GloVe mean-pooled
# embeddings; else a generated set written to out/demo by a few lines of Python.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DATA_ROOT=${VECSTASH_DATA_ROOT:-../shared/data}
BIN=$BUILD/tools/vecstash
OUT=out/demo
DATA_DIR=out/demo-data
COLLECTION=demo

if [ ! -x "$BIN" ]; then
  echo "demo: $BIN not found: build first (make demo does)" >&2
  exit 1
fi
rm -rf "$OUT" "$DATA_DIR"
mkdir -p "$OUT"

# ---- the data --------------------------------------------------------------------------------
minilm=$DATA_ROOT/minilm_fiori/fiori_docs_minilm384.fvecs
records=$DATA_ROOT/minilm_fiori/records.jsonl.gz
scifact=$DATA_ROOT/scifact/embeddings_glove100d_avg/corpus.fvecs
filter=""
if [ -f "$minilm" ]; then
  echo "demo: data: 778 real text embeddings (all-MiniLM-L6-v2, 384 dimensions) of SAP Fiori documentation"
  echo "demo:       chunks, from $minilm"
  file=$minilm
  if [ -f "$records" ] && command -v python3 >/dev/null; then
    # One JSONL line per chunk: the vector from the .fvecs file (same row order as the records) and
    # the chunk's title and category as payload, so the query results can be read.
    file=$OUT/fiori.jsonl
    python3 - "$minilm" "$records" "$file" <<'EOF'
import gzip, json, struct, sys
vecs, recs, out = sys.argv[1:4]
raw = open(vecs, "rb").read()
with gzip.open(recs, "rt", encoding="utf-8") as r, open(out, "w", encoding="utf-8") as w:
    off = 0
    for i, line in enumerate(r):
        dim = struct.unpack_from("<i", raw, off)[0]
        vec = struct.unpack_from("<%df" % dim, raw, off + 4)
        off += 4 + 4 * dim
        rec = json.loads(line)
        payload = {"title": rec["title"], "category": rec["category"]}
        w.write(json.dumps({"id": i, "vector": [float("%.9g" % x) for x in vec], "payload": payload},
                           ensure_ascii=False) + "\n")
    assert off == len(raw), "fewer records than vectors"
EOF
    echo "demo:       with title and category as payload: $file"
    filter='{"must":[{"key":"category","match":{"value":"Sapui5"}}]}'
  fi
elif [ -f "$scifact" ]; then
  echo "demo: data: SciFact corpus, 5,183 abstracts as GloVe mean-pooled embeddings (100 dimensions), $scifact"
  file=$scifact
else
  echo "demo: no $DATA_ROOT: using a generated set (2,000 x 64, 20 clusters) in $OUT/generated.npy"
  file=$OUT/generated.npy
  python3 - "$file" <<'EOF'
import random, struct, sys
rows, dim, clusters = 2000, 64, 20
rng = random.Random(42)
centres = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(clusters)]
values = []
for i in range(rows):
    c = centres[rng.randrange(clusters)]
    values += [x + rng.gauss(0, 0.35) for x in c]
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, dim)
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<%df" % len(values), *values))
EOF
fi

# ---- the server --------------------------------------------------------------------------------
"$BIN" serve --data-dir "$DATA_DIR" --port 0 --port-file "$OUT/port" >"$OUT/server.log" 2>&1 &
server=$!
stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}
trap stop_server EXIT
for _ in $(seq 300); do
  [ -s "$OUT/port" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "demo: the server did not start:" >&2
    cat "$OUT/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$OUT/port" ]; then
  echo "demo: the server wrote no port file within 30 s (log: $OUT/server.log)" >&2
  exit 1
fi
URL=http://127.0.0.1:$(cat "$OUT/port")
echo "demo: server listening on $URL (data: $DATA_DIR, log: $OUT/server.log)"

# Echo the command (arguments with shell characters in single quotes), then run it.
run() {
  local line="\$ vecstash" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then line+=" $arg"; else line+=" '${arg//\'/\'\\\'\'}'"; fi
  done
  printf '\n%s\n' "$line"
  "$BIN" "$@"
}

# ---- load, query, inspect ----------------------------------------------------------------------
# The collection calibrates by itself after calibration_sample points (10,000 by default); these sets
# are smaller, so --calibrate fits the int8 codes to the points once they are all in.
run ingest --url "$URL" --collection "$COLLECTION" --file "$file" --create --kind i8 --distance Cosine --calibrate
payload=()
[ "$file" != "${file%.jsonl}" ] && payload=(--with-payload)
run query --url "$URL" --collection "$COLLECTION" --file "$file" --row 0 --limit 5 "${payload[@]}"
run query --url "$URL" --collection "$COLLECTION" --file "$file" --row 100 --rows 2 --limit 3 "${payload[@]}"
if [ -n "$filter" ]; then
  run query --url "$URL" --collection "$COLLECTION" --file "$file" --row 0 --limit 3 --filter "$filter" "${payload[@]}"
fi
run inspect --url "$URL"
run inspect --url "$URL" --collection "$COLLECTION" --report

# ---- stop --------------------------------------------------------------------------------------
echo
kill -TERM "$server"
set +e
wait "$server"
rc=$?
set -e
trap - EXIT
if [ "$rc" -ne 0 ]; then
  echo "demo: the server exited with status $rc after SIGTERM (log: $OUT/server.log)" >&2
  exit 1
fi
echo "demo: server stopped by SIGTERM, exit status 0 ($(tail -n 1 "$OUT/server.log" | sed 's/^\[[^]]*\] \[[^]]*\] //'))"
echo
echo "demo: to keep a server running on this data (port 6333; Ctrl-C stops it):"
echo "  $BIN serve --data-dir $DATA_DIR"
echo "demo: then, from another shell:"
echo "  $BIN inspect --collection $COLLECTION --report"
echo "  $BIN query --collection $COLLECTION --file $file --row 7${payload[*]:+ ${payload[*]}}"
