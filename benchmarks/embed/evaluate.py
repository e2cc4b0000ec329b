#!/usr/bin/env python3
"""Exact float32 cosine search of the test queries over the corpus, scored against BEIR qrels.

    python benchmarks/embed/evaluate.py --emb ~/.cache/vecstash/embeddings/scifact-minilm \
        --data ../shared/data/scifact [--split test] [--json]

Reads corpus.fvecs / queries.fvecs with corpus_ids.txt / queries_ids.txt (written by embed_beir.py; the
older layout in ../shared/data/scifact/embeddings_glove100d_avg with queries_test.fvecs and
queries_test_ids.txt is read too), normalises every row (so the inner product is the cosine), ranks the
whole corpus for each query with numpy and prints:

  nDCG@10    as BEIR computes it through pytrec_eval (trec_eval's ndcg_cut.10): gain = the graded
             relevance in the qrels, discount log2(rank + 1), ideal DCG from all of the query's judged
             relevant documents (relevance > 0); averaged over the queries that have qrels. The query's
             own id is not removed from the ranking. Ties in score are broken by corpus order (a
             stable sort); trec_eval would break them by document id instead, which only matters for
             exactly equal float scores.
  recall@100 |relevant documents in the top 100| / |relevant documents|, averaged the same way.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def read_fvecs(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    d = int(raw[0])
    if raw.size % (d + 1) != 0:
        raise ValueError(f"{path}: size is not a multiple of 4*(1+{d})")
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        raise ValueError(f"{path}: rows with differing dimensions")
    return rows[:, 1:].view(np.float32).copy()


def read_ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if i == 0 and parts[0] == "query-id":
                continue
            if len(parts) >= 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def first_existing(folder: Path, *names: str) -> Path:
    for n in names:
        if (folder / n).exists():
            return folder / n
    raise FileNotFoundError(f"none of {names} in {folder}")


def ndcg_at_k(ranked: list[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / np.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / np.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def evaluate(D: np.ndarray, Q: np.ndarray, doc_ids: list[str], q_ids: list[str],
             qrels: dict[str, dict[str, int]], k_ndcg: int = 10, k_recall: int = 100) -> dict:
    D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-30)
    Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-30)
    scores = Q.astype(np.float32) @ D.astype(np.float32).T
    kmax = max(k_ndcg, k_recall)
    ndcgs, recalls, missing = [], [], 0
    for qi, qid in enumerate(q_ids):
        rels = qrels.get(qid)
        if not rels or not any(r > 0 for r in rels.values()):
            missing += 1
            continue
        top = np.argsort(-scores[qi], kind="stable")[:kmax]
        ranked = [doc_ids[j] for j in top]
        ndcgs.append(ndcg_at_k(ranked, rels, k_ndcg))
        recalls.append(recall_at_k(ranked, rels, k_recall))
    judged_queries = sum(1 for q, r in qrels.items() if any(v > 0 for v in r.values()))
    return {
        f"ndcg@{k_ndcg}": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        f"recall@{k_recall}": float(np.mean(recalls)) if recalls else float("nan"),
        "queries_scored": len(ndcgs),
        "queries_without_qrels": missing,
        "queries_in_qrels": judged_queries,
        "n_corpus": len(doc_ids),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emb", required=True, type=Path, help="folder with corpus/queries .fvecs and ids")
    ap.add_argument("--data", required=True, type=Path, help="BEIR folder (for qrels/<split>.tsv)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()

    emb = args.emb.expanduser()
    D = read_fvecs(first_existing(emb, "corpus.fvecs"))
    Q = read_fvecs(first_existing(emb, "queries.fvecs", "queries_test.fvecs"))
    doc_ids = read_ids(first_existing(emb, "corpus_ids.txt"))
    q_ids = read_ids(first_existing(emb, "queries_ids.txt", "queries_test_ids.txt"))
    if len(doc_ids) != len(D) or len(q_ids) != len(Q):
        raise SystemExit(f"row/id count mismatch: corpus {len(D)}/{len(doc_ids)}, queries {len(Q)}/{len(q_ids)}")
    qrels = read_qrels(args.data.expanduser() / "qrels" / f"{args.split}.tsv")
    res = evaluate(D, Q, doc_ids, q_ids, qrels)
    res["emb"] = str(emb)
    meta = emb / "meta.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        res["model"] = m.get("model_name", m.get("model"))
    if res["queries_scored"] < res["queries_in_qrels"]:
        print(f"warning: {res['queries_in_qrels'] - res['queries_scored']} judged queries have no embedding "
              f"(partial run?)", file=sys.stderr)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res.get('model', emb.name)}: {res['queries_scored']} queries x {res['n_corpus']} docs, "
              f"exact float32 cosine")
        print(f"  nDCG@10    {res['ndcg@10']:.4f}")
        print(f"  recall@100 {res['recall@100']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
