#!/usr/bin/env bash
# The main job of this release: the storage-versus-accuracy benchmark on one data set.
# SciFact (GloVe embeddings, with relevance judgments) from ../shared/data when present; otherwise a
# generated embedding-like set. Prints the table; writes CSV and an SVG plot under out/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DATA_ROOT=${VECSTASH_DATA_ROOT:-../shared/data}

if [ -f "$DATA_ROOT/scifact/embeddings_glove100d_avg/corpus.fvecs" ]; then
  dataset=scifact-glove
  echo "demo: data set SciFact (GloVe mean-pooled embeddings, BEIR qrels) from $DATA_ROOT"
else
  dataset=synthetic
  echo "demo: $DATA_ROOT/scifact not found: using a generated embedding-like data set instead"
fi

mkdir -p out
"$BUILD/tools/vecstash" bench compression --dataset "$dataset" --data-root "$DATA_ROOT" \
  --csv out/demo.csv --svg out/demo.svg
echo
echo "demo: every configuration as CSV in out/demo.csv; the trade-off plot in out/demo.svg"
echo "demo: more data sets and options: $BUILD/tools/vecstash bench compression --help"
