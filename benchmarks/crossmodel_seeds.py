#!/usr/bin/env python3
"""How much the cross-model figures depend on which anchors were drawn.

Runs `vecstash bench crossmodel` once per anchor-selection seed, in both directions, for one anchor
count and strategy, and writes a markdown table of nDCG@10 per seed and method with the mean, the
lowest and the highest, and each against the target (90 % of the lower native nDCG@10).

    python3 benchmarks/crossmodel_seeds.py --seeds 42,1,2,3,4,5 --out docs/bench/crossmodel-seeds.md

Only the standard library; the embeddings are those of `vecstash bench crossmodel` (README).
"""
from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(binary: str, corpus: str, queries: str, seed: int, args: argparse.Namespace, work: Path) -> list[dict]:
    out = work / f"{corpus}-{queries}-{seed}.csv"
    cmd = [binary, "bench", "crossmodel", "--corpus-model", corpus, "--query-model", queries,
           "--anchors", str(args.anchors), "--strategies", args.strategy, "--kinds", "",
           "--methods", args.methods, "--seed", str(seed), "--csv", str(out)]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with out.open() as f:
        return list(csv.DictReader(f))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="build/tools/vecstash")
    ap.add_argument("--models", default="minilm,wordllama", help="the two models, comma-separated")
    ap.add_argument("--seeds", default="42,1,2,3,4,5")
    ap.add_argument("--anchors", type=int, default=1024)
    ap.add_argument("--strategy", default="mixed")
    ap.add_argument("--methods", default="procrustes,local,procrustes+hubness,local+hubness")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    models = args.models.split(",")
    if len(models) != 2:
        ap.error("--models needs two names")
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    start = time.time()
    lines = [f"nDCG@10 of cross-model queries with {args.anchors} `{args.strategy}` anchors, per anchor-selection "
             f"seed (`--seed`). Command: `python3 benchmarks/crossmodel_seeds.py --seeds {args.seeds} "
             f"--anchors {args.anchors} --strategy {args.strategy} --methods {args.methods} --out ...`.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, queries in ((models[0], models[1]), (models[1], models[0])):
            table: dict[str, dict[int, float]] = {m: {} for m in methods}
            native: dict[str, float] = {}
            for seed in seeds:
                for row in run(args.binary, corpus, queries, seed, args, Path(tmp)):
                    if row["direction"] in ("A->A", "B->B"):
                        native[row["direction"]] = float(row["ndcg10"])
                    elif row["method"] in table:
                        table[row["method"]][seed] = float(row["ndcg10"])
            target = 0.9 * min(native["A->A"], native["B->B"])
            lines += [f"**{corpus} corpus, {queries} queries.** A->A {native['A->A']:.4f}, B->B {native['B->B']:.4f}; "
                      f"target {target:.4f}.", ""]
            lines.append("| method | " + " | ".join(f"seed {s}" for s in seeds) +
                         " | mean | lowest | highest | seeds at or above the target |")
            lines.append("|---|" + "---:|" * (len(seeds) + 4))
            for m in methods:
                v = [table[m][s] for s in seeds]
                hit = sum(x >= target for x in v)
                lines.append(f"| {m} | " + " | ".join(f"{x:.4f}" for x in v) +
                             f" | {statistics.mean(v):.4f} ({100 * statistics.mean(v) / (target / 0.9):.1f} %) | "
                             f"{min(v):.4f} ({100 * min(v) / (target / 0.9):.1f} %) | "
                             f"{max(v):.4f} ({100 * max(v) / (target / 0.9):.1f} %) | {hit} of {len(v)} |")
            lines.append("")
    lines.append(f"Whole run: {time.time() - start:.0f} s.")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
