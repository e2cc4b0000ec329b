#!/usr/bin/env python3
"""The paper comparison on real text embeddings (issue 5): nDCG@10 retention per code kind x PCA level,
with and without float32 rescoring, beside the figures of Huerga-Perez et al. 2025 (arXiv 2505.00105);
the paper's handicapped int8 and binary recomputed on the same vectors; the cheapest configuration that
keeps >= 99 % of float32 nDCG@10 (RAM only, and RAM + disk when rescoring reads originals from disk);
and the trade-off plot as SVG.

Input: the CSV of `vecstash bench compression` on the locally embedded SciFact sets, e.g.
    build/tools/vecstash bench compression --dataset scifact-minilm,scifact-wordllama \
        --pca none,100,75,50,25 --threads 1 --csv docs/bench/paper.csv
and the embeddings cache (benchmarks/embed/embed_beir.py) for the paper-style variants.
Usage:
    .venv/bin/python benchmarks/paper/report.py --csv docs/bench/paper.csv --out docs/bench/paper.md \
        --svg 'docs/bench/paper-{dataset}.svg'
Needs numpy only.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import struct
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

# The embeddings' readers live with the embedding scripts.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "embed"))
from evaluate import read_fvecs, read_ids, read_qrels  # noqa: E402

# Retention of nDCG@10 reported by the paper (MTEB retrieval), for bge-small-en-v1.5 and
# nomic-embed-text-v1.5. Their int8 truncates and scores raw unsigned codes; their binary is scored
# without rescoring.
PAPER = [
    ("float8 E4M3", "e4m3", "none", 99.8, 100.2),
    ("float8 E5M2", "e5m2", "none", 99.7, 99.8),
    ("int8", "i8", "none", 96.5, 98.5),
    ("binary, no rescoring", "b1", "none", 88.4, 92.6),
    ("PCA 50 % + E4M3", "e4m3", "50", 95.0, 98.5),
    ("PCA 25 % + E4M3", "e4m3", "25", 86.1, 93.6),
]
# Our variant standing for each code kind in the tables and the plot (the codec defaults).
DEFAULT_VARIANT = {"f32": "f32", "f16": "f16", "bf16": "bf16", "e4m3": "e4m3:vector", "e5m2": "e5m2:vector",
                   "i8": "i8:minmax", "b1": "b1:asym"}
PLAIN_CAST = {"e4m3": "e4m3:none", "e5m2": "e5m2:none", "b1": "b1:hamming"}
PCA_ORDER = ["none", "100", "75", "50", "25"]
COLORS = {"f16": "#1f77b4", "bf16": "#17becf", "e4m3": "#2ca02c", "e5m2": "#bcbd22", "i8": "#d62728",
          "b1": "#9467bd", "f32": "#7f7f7f"}


def ndcg_at_10(ranked: np.ndarray, qids: list[str], dids: list[str], qrels: dict[str, dict[str, int]]) -> float:
    """Mean nDCG@10 over judged queries: linear gain (the relevance), log2 discount, ideal DCG from
    every judged document of the query (the same definition as vecstash bench compression)."""
    total, n = 0.0, 0
    for qi, qid in enumerate(qids):
        judged = qrels.get(qid)
        if not judged:
            continue
        dcg = sum(judged.get(dids[d], 0) / math.log2(r + 2) for r, d in enumerate(ranked[qi, :10]))
        ideal = sorted(judged.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
        if idcg > 0:
            total += dcg / idcg
            n += 1
    return total / max(n, 1)


def top10(scores: np.ndarray) -> np.ndarray:
    # Highest score first; ties by the smaller row (stable sort of the negated scores).
    return np.argsort(-scores, axis=1, kind="stable")[:, :10]


def paper_variants(folder: Path, qrels_path: Path) -> dict[str, float]:
    """nDCG@10 of float32, the paper's int8 (global range, truncation, raw unsigned dot products) and
    the paper's binary (sign without centring, Hamming), on the same vectors."""
    base = read_fvecs(folder / "corpus.fvecs")
    queries = read_fvecs(folder / "queries.fvecs")
    dids, qids = read_ids(folder / "corpus_ids.txt"), read_ids(folder / "queries_ids.txt")
    qrels = read_qrels(qrels_path)
    base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    out = {"f32": ndcg_at_10(top10(queries @ base.T), qids, dids, qrels)}
    lo, hi = float(base.min()), float(base.max())
    def trunc_u8(x: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((x - lo) / (hi - lo) * 255.0), 0, 255).astype(np.float64)
    # Raw unsigned codes (no offset correction), ranked by cosine over the codes, as a store would;
    # ranked by their plain dot product instead, the offsets swamp the ranking (reported as a note).
    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    qu, bu = trunc_u8(queries), trunc_u8(base)
    out["i8-paper"] = ndcg_at_10(top10(unit(qu) @ unit(bu).T), qids, dids, qrels)
    out["i8-paper-dot"] = ndcg_at_10(top10(qu @ bu.T), qids, dids, qrels)
    qb, bb = (queries > 0).astype(np.float64), (base > 0).astype(np.float64)
    # Hamming distance = popcount(q xor b); as a similarity: matches = d - hamming.
    matches = qb @ bb.T + (1 - qb) @ (1 - bb).T
    out["b1-paper"] = ndcg_at_10(top10(matches), qids, dids, qrels)
    return out


def load_rows(csv_path: Path) -> dict[str, list[dict]]:
    by_ds: dict[str, list[dict]] = defaultdict(list)
    with open(csv_path) as f:
        for r in csv.DictReader(f):
            by_ds[r["dataset"]].append(r)
    return by_ds


def find(rows: list[dict], code: str, pca: str) -> dict | None:
    for r in rows:
        if r["code"] == code and r["pca_percent"] == pca:
            return r
    return None


def pct(x: float) -> str:
    return f"{100.0 * x:.1f} %"


def svg_plot(ds: str, rows: list[dict], f32: float, path: Path) -> None:
    W, H, L, R, T, B = 800, 460, 70, 200, 40, 60
    xs = [float(r["compression_ratio"]) for r in rows]
    xmax = max(32.0, max(xs) * 1.1)
    rets = [100.0 * float(r[key]) / f32 for r in rows for key in ("ndcg_at_10", "rescore_ndcg_at_10")
            if r["code"] in DEFAULT_VARIANT.values()]
    ymin = max(0.0, math.floor(min(rets) / 10.0) * 10.0)
    def X(ratio: float) -> float:
        return L + (math.log2(ratio) / math.log2(xmax)) * (W - L - R)
    def Y(ret: float) -> float:
        return T + (1.0 - (max(ret, ymin) - ymin) / (102.0 - ymin)) * (H - T - B)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">{ds}: nDCG@10 retention vs compression '
             f'(float32 nDCG@10 = {f32:.4f})</text>']
    for ratio in (1, 2, 4, 8, 16, 32, 64):
        if ratio > xmax:
            continue
        x = X(ratio)
        parts.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H-B}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{H-B+16}" text-anchor="middle">{ratio}x</text>')
    for ret in range(int(ymin), 101, 10):
        y = Y(ret)
        parts.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W-R}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{L-6}" y="{y+4:.1f}" text-anchor="end">{ret} %</text>')
    parts.append(f'<line x1="{L}" y1="{Y(99):.1f}" x2="{W-R}" y2="{Y(99):.1f}" stroke="#e55" stroke-dasharray="2,3"/>')
    parts.append(f'<text x="{W-R-4}" y="{Y(99)+12:.1f}" text-anchor="end" font-size="10" fill="#e55">99 %</text>')
    parts.append(f'<text x="{(L+W-R)/2}" y="{H-18}" text-anchor="middle">compression ratio (float32 bytes / stored bytes, log scale)</text>')
    parts.append(f'<text x="16" y="{(T+H-B)/2}" transform="rotate(-90 16 {(T+H-B)/2})" text-anchor="middle">nDCG@10 retention</text>')
    legend_y = T + 10
    for kind, code in DEFAULT_VARIANT.items():
        if kind == "f32":
            continue
        color = COLORS[kind]
        for rescored, dash in ((False, ""), (True, ' stroke-dasharray="5,4"')):
            pts = []
            for pca in PCA_ORDER:
                r = find(rows, code, pca)
                if r is None:
                    continue
                nd = float(r["rescore_ndcg_at_10"] if rescored else r["ndcg_at_10"])
                pts.append((X(float(r["compression_ratio"])), Y(100.0 * nd / f32), pca))
            if not pts:
                continue
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="' +
                         " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts) + '"/>')
            for x, y, pca in pts:
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color if not rescored else "white"}" stroke="{color}"/>')
                if not rescored and pca != "none":
                    parts.append(f'<text x="{x+5:.1f}" y="{y-5:.1f}" font-size="9" fill="{color}">{pca}%</text>')
        parts.append(f'<line x1="{W-R+10}" y1="{legend_y}" x2="{W-R+30}" y2="{legend_y}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{W-R+36}" y="{legend_y+4}">{code}</text>')
        legend_y += 18
    parts.append(f'<text x="{W-R+10}" y="{legend_y+10}" font-size="10">solid: codes only</text>')
    parts.append(f'<text x="{W-R+10}" y="{legend_y+24}" font-size="10">dashed: + float32 rescoring</text>')
    parts.append(f'<text x="{W-R+10}" y="{legend_y+38}" font-size="10">points: PCA none/100/75/50/25 %</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True, type=Path, help="vecstash bench compression CSV")
    ap.add_argument("--embeddings-root", type=Path,
                    default=Path(os.environ.get("VECSTASH_EMBEDDINGS", Path.home() / ".cache/vecstash/embeddings")))
    ap.add_argument("--qrels", type=Path, default=Path("../shared/data/scifact/qrels/test.tsv"))
    ap.add_argument("--out", type=Path, help="write the markdown report here too")
    ap.add_argument("--svg", help="plot path; {dataset} is replaced by the data set name")
    args = ap.parse_args()

    by_ds = load_rows(args.csv)
    md: list[str] = []
    for ds, rows in sorted(by_ds.items()):
        f32row = find(rows, "f32", "none")
        if f32row is None:
            print(f"{ds}: no f32 row in {args.csv}", file=sys.stderr)
            return 1
        f32 = float(f32row["ndcg_at_10"])
        dim = int(f32row["dim"])
        md.append(f"### {ds} ({dim} dimensions, {f32row['base_rows']} documents, {f32row['queries']} queries; "
                  f"float32 nDCG@10 = {f32:.4f})\n")
        paper = {}
        folder = args.embeddings_root / ds
        if (folder / "corpus.fvecs").exists():
            paper = paper_variants(folder, args.qrels)
            if abs(paper["f32"] - f32) > 1e-3:
                print(f"{ds}: numpy float32 nDCG@10 {paper['f32']:.4f} differs from the benchmark's {f32:.4f}",
                      file=sys.stderr)
                return 1
        md.append("| configuration | paper, bge-small | paper, nomic | ours: default codec | ours: plain cast / paper-style | ours: + float32 rescoring | bytes/vector (ours, default) |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        for label, kind, pca, p_bge, p_nomic in PAPER:
            r = find(rows, DEFAULT_VARIANT[kind], pca)
            if r is None:
                continue
            ours = float(r["ndcg_at_10"]) / f32
            resc = float(r["rescore_ndcg_at_10"]) / f32
            if kind == "i8":
                alt = paper.get("i8-paper")
                alt_s = pct(alt / f32) + " (paper-style)" if alt is not None else "–"
            elif kind == "b1":
                alt = paper.get("b1-paper")
                alt_s = pct(alt / f32) + " (paper-style)" if alt is not None else "–"
            else:
                pr = find(rows, PLAIN_CAST[kind], pca)
                alt_s = pct(float(pr["ndcg_at_10"]) / f32) + " (plain cast)" if pr else "–"
            md.append(f"| {label} | {p_bge:.1f} % | {p_nomic:.1f} % | {pct(ours)} | {alt_s} | {pct(resc)} | {float(r['bytes_per_vector']):.0f} |")
        md.append("")
        if paper:
            md.append(f"Paper-style int8 here: codes truncated (not rounded) to 0..255 over the corpus's value range, no "
                      f"offset correction, ranked by cosine over the codes ({pct(paper['i8-paper'] / f32)}); ranked by "
                      f"their plain dot product instead: {pct(paper['i8-paper-dot'] / f32)}. Paper-style binary: sign "
                      f"bits without centring, Hamming, no rescoring ({pct(paper['b1-paper'] / f32)}).\n")
        # The full sweep for the default variants.
        md.append("| code | PCA | dim | B/vector | ratio | nDCG@10 | retention | rescored nDCG@10 | rescored retention | recall@10 |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for kind, code in DEFAULT_VARIANT.items():
            for pca in PCA_ORDER:
                r = find(rows, code, pca)
                if r is None:
                    continue
                nd, rnd = float(r["ndcg_at_10"]), float(r["rescore_ndcg_at_10"])
                md.append(f"| {code} | {pca} | {r['pca_dim']} | {float(r['bytes_per_vector']):.0f} | "
                          f"{float(r['compression_ratio']):.2f} | {nd:.4f} | {pct(nd / f32)} | {rnd:.4f} | "
                          f"{pct(rnd / f32)} | {float(r['recall_at_k']):.3f} |")
        md.append("")
        # Cheapest configuration keeping >= 99 % (every variant, every PCA level).
        def cheapest(rescored: bool):
            best = None
            for r in rows:
                nd = float(r["rescore_ndcg_at_10"] if rescored else r["ndcg_at_10"])
                if nd / f32 < 0.99:
                    continue
                ram = float(r["bytes_per_vector"])
                if best is None or ram < best[0]:
                    best = (ram, r, nd)
            return best
        a, b = cheapest(False), cheapest(True)
        md.append("Fewest stored bytes at >= 99 % of float32 nDCG@10:")
        if a:
            md.append(f"- in RAM, no rescoring: **{a[1]['code']} at PCA {a[1]['pca_percent']}**, {a[0]:.0f} B/vector "
                      f"({4 * dim / a[0]:.1f}x less than float32), retention {pct(a[2] / f32)}")
        if b:
            md.append(f"- in RAM with float32 originals on disk for rescoring: **{b[1]['code']} at PCA "
                      f"{b[1]['pca_percent']}**, {b[0]:.0f} B/vector in RAM ({4 * dim / b[0]:.1f}x less) + "
                      f"{4 * dim} B/vector on disk, retention {pct(b[2] / f32)}; each query reads "
                      f"{int(float(b[1]['rescore_bytes_read_per_query_k'])) // 1024} KiB of originals")
        md.append("")
        if args.svg:
            path = Path(args.svg.replace("{dataset}", ds))
            path.parent.mkdir(parents=True, exist_ok=True)
            svg_plot(ds, rows, f32, path)
            md.append(f"Plot: `{path}`\n")
    text = "\n".join(md)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
